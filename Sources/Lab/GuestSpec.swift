import Foundation
import VSphere

/// One guest as the lab will build it: validated values only, so nothing here can inject
/// into a shell command, a config file or a network outside the lab.
public struct GuestSpec: Equatable, Sendable {
    /// The VM's managed object id (`vm-42`); names the guest's namespace `flt-vm-42`.
    public let key: String
    public let hostName: String
    public let address: IPv4Address
    public let prefixLength: Int
    public let gateway: IPv4Address?
    public let dnsServers: [IPv4Address]
    public let role: String
    /// The account the password is for (root unless the metadata names another user).
    public let user: String
    /// A crypt(3) hash of the user's password, written into the guest's own /etc/shadow; without
    /// one the user has no password (key logins only) until someone sets it inside the guest.
    public let passwordHash: String?
    /// Public keys (OpenSSH `authorized_keys` lines) that log in as `user`.
    public let authorizedKeys: [String]
    /// A sudoers rule for `user` (cloud-init's `sudo`), e.g. `ALL=(ALL) NOPASSWD:ALL`.
    public let sudo: String?

    /// Checks every value; `labNetwork` is the range the guest's address, network and gateway must lie in.
    public init(
        key: String, hostName: String, address: String, prefixLength: Int, gateway: String?,
        dnsServers: [String], role: String, user: String = "root", passwordHash: String?,
        authorizedKeys: [String] = [], sudo: String? = nil, labNetwork: IPv4Network
    ) throws {
        func refuse(_ reason: String) -> LabError { .invalidGuest(vm: key, reason: reason) }
        guard Self.isValidKey(key) else { throw refuse("managed object id \(key) is not of the form vm-N") }
        guard Self.isValidHostName(hostName) else { throw refuse("invalid host name \(hostName.debugDescription)") }
        guard let parsedAddress = IPv4Address(address) else { throw refuse("invalid IPv4 address \(address.debugDescription)") }
        guard (labNetwork.prefixLength...30).contains(prefixLength) else {
            throw refuse("prefix /\(prefixLength) is not inside the lab network \(labNetwork)")
        }
        let guestNetwork = IPv4Network(containing: parsedAddress, prefixLength: prefixLength)
        guard labNetwork.contains(guestNetwork) else {
            throw refuse("\(address)/\(prefixLength) is outside the lab network \(labNetwork)")
        }
        guard parsedAddress != guestNetwork.base, parsedAddress != guestNetwork.broadcast,
            parsedAddress != labNetwork.firstHost
        else { throw refuse("\(address) is a network, broadcast or the lab gateway address") }
        var parsedGateway: IPv4Address?
        if let gateway, !gateway.isEmpty {
            guard let value = IPv4Address(gateway), guestNetwork.contains(value), value != parsedAddress else {
                throw refuse("gateway \(gateway) is not another address of \(guestNetwork)")
            }
            parsedGateway = value
        }
        // DNS servers are only written into resolv.conf; no route leads beyond the lab anyway.
        let parsedDNS = try dnsServers.map { server in
            guard let value = IPv4Address(server) else { throw refuse("invalid DNS server \(server.debugDescription)") }
            return value
        }
        guard Self.isValidRole(role) else { throw refuse("invalid role \(role.debugDescription)") }
        guard Self.isValidUser(user) else { throw refuse("invalid user name \(user.debugDescription)") }
        if let hash = passwordHash {
            guard Self.isValidCryptHash(hash) else { throw refuse("the password is not a crypt(3) hash") }
        }
        for authorizedKey in authorizedKeys {
            guard Self.isValidAuthorizedKey(authorizedKey) else {
                throw refuse("\(authorizedKey.prefix(40).debugDescription) is not an SSH public key line")
            }
        }
        if let sudo {
            guard Self.isValidSudoRule(sudo) else { throw refuse("invalid sudo rule \(sudo.debugDescription)") }
        }
        self.key = key
        self.hostName = hostName
        self.address = parsedAddress
        self.prefixLength = prefixLength
        self.gateway = parsedGateway
        self.dnsServers = parsedDNS
        self.role = role
        self.user = user
        self.passwordHash = passwordHash
        self.authorizedKeys = authorizedKeys
        self.sudo = sudo
    }

    /// The files guest-init.sh copies into the guest on its first boot (name → content).
    var seedFiles: [String: String] {
        var interfaces = """
            # Written by the Flotilla lab; ifupdown owns this file (ifdown eth0; edit; ifup eth0).
            auto lo
            iface lo inet loopback

            auto eth0
            iface eth0 inet static
                address \(address)/\(prefixLength)

            """
        if let gateway {
            interfaces += "    gateway \(gateway)\n"
        }
        return [
            "hostname": hostName + "\n",
            "interfaces": interfaces,
            "resolv.conf": dnsServers.map { "nameserver \($0)\n" }.joined(),
            "role": role + "\n",
            "user": user + "\n",
            "password.hash": (passwordHash ?? "") + "\n",
            "authorized_keys": authorizedKeys.map { $0 + "\n" }.joined(),
            "sudo": sudo.map { $0 + "\n" } ?? "",
        ]
    }

    static func isValidKey(_ key: String) -> Bool {
        guard key.hasPrefix("vm-") else { return false }
        let number = key.dropFirst(3)
        return (1...8).contains(number.count) && number.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// RFC 1123 host name, at most 63 characters (the kernel's UTS limit is 64).
    static func isValidHostName(_ name: String) -> Bool {
        guard (1...63).contains(name.count) else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }

    static func isValidRole(_ role: String) -> Bool {
        (1...32).contains(role.count) && role.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    /// `$id$...` with only the characters crypt(3) hashes use.
    static func isValidCryptHash(_ hash: String) -> Bool {
        hash.hasPrefix("$") && hash.count <= 512
            && hash.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "./$=,-".contains($0)) }
    }

    /// `type base64 [comment]` on one line, with a key type OpenSSH knows and no options
    /// (`command=...`), so the metadata can give a key but not a forced command.
    static func isValidAuthorizedKey(_ line: String) -> Bool {
        let fields = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        let keyTypes = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"]
        guard line.count <= 8192, fields.count >= 2, keyTypes.contains(String(fields[0])), !fields[1].isEmpty,
            fields[1].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+/=".contains($0)) })
        else { return false }
        return fields.count == 2
            || fields[2].allSatisfy {
                $0.isASCII && !$0.isNewline && ($0 == " " || $0.isPunctuation || $0.isLetter || $0.isNumber || $0.isSymbol)
            }
    }

    /// A sudoers rule such as `ALL=(ALL) NOPASSWD:ALL`: one line of the characters such rules use.
    static func isValidSudoRule(_ rule: String) -> Bool {
        (1...200).contains(rule.count) && rule.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || " =(),:!_/.-".contains($0)) }
    }

    /// A portable login name (what useradd accepts by default).
    static func isValidUser(_ user: String) -> Bool {
        guard let first = user.first, first.isASCII, first.isLowercase || first == "_", user.count <= 32 else { return false }
        return user.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_" || $0 == "-") }
    }
}
