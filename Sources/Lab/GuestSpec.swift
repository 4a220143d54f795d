import Foundation

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
    /// A crypt(3) hash of the user's password, written into the guest's own /etc/shadow.
    public let passwordHash: String?

    /// Checks every value; `labNetwork` is the range the guest's address, network and gateway must lie in.
    public init(
        key: String, hostName: String, address: String, prefixLength: Int, gateway: String?,
        dnsServers: [String], role: String, user: String = "root", passwordHash: String?,
        labNetwork: IPv4Network
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
        self.key = key
        self.hostName = hostName
        self.address = parsedAddress
        self.prefixLength = prefixLength
        self.gateway = parsedGateway
        self.dnsServers = parsedDNS
        self.role = role
        self.user = user
        self.passwordHash = passwordHash
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

    /// A portable login name (what useradd accepts by default).
    static func isValidUser(_ user: String) -> Bool {
        guard let first = user.first, first.isASCII, first.isLowercase || first == "_", user.count <= 32 else { return false }
        return user.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_" || $0 == "-") }
    }
}
