import Foundation

/// Network identity, password and login keys for a new guest, handed over through `guestinfo.*`
/// extraConfig to cloud-init's VMware datasource (SPEC ARCH-3, BEY-9): no network path to the
/// guest is needed, and the password travels only as a SHA-512 crypt hash, which the platform
/// removes again once the guest has applied it.
public struct GuestConfiguration: Sendable, Equatable {
    public struct IPv4: Sendable, Equatable {
        public var address: String
        public var prefixLength: Int
        public var gateway: String?
        /// Primary, then secondary DNS server.
        public var dns: [String]

        public init(address: String, prefixLength: Int, gateway: String? = nil, dns: [String] = []) {
            self.address = address
            self.prefixLength = prefixLength
            self.gateway = gateway
            self.dns = dns
        }
    }

    public var hostName: String
    /// nil: DHCP.
    public var ipv4: IPv4?
    /// A `$6$` crypt hash (see `CryptSHA512`), set for `user`; nil leaves the password as it is.
    public var passwordHash: String?
    public var user: String
    /// Public keys in OpenSSH form (`ssh-ed25519 AAAA… comment`) that log in as `user`.
    public var authorizedKeys: [String]
    /// A sudoers rule for `user` (cloud-init's `sudo`), such as `passwordlessSudo`.
    public var sudo: String?

    /// The rule a non-root user needs so that the platform can run root's commands with `sudo -n`.
    public static let passwordlessSudo = "ALL=(ALL) NOPASSWD:ALL"

    public init(
        hostName: String, ipv4: IPv4? = nil, passwordHash: String? = nil, user: String = "root",
        authorizedKeys: [String] = [], sudo: String? = nil
    ) {
        self.hostName = hostName
        self.ipv4 = ipv4
        self.passwordHash = passwordHash
        self.user = user
        self.authorizedKeys = authorizedKeys
        self.sudo = sudo
    }

    public static let metadataKey = "guestinfo.metadata"
    public static let userdataKey = "guestinfo.userdata"

    public enum DecodingError: Error, Equatable {
        case missingKey(String)
        case unsupportedEncoding(String)
        case malformed(String)
    }

    /// The four extraConfig keys cloud-init reads: metadata and userdata, each base64 with its `.encoding`.
    public func extraConfig() throws -> [ExtraConfigEntry] {
        let encoder = JSONEncoder()
        // Unescaped slashes: keys and crypt hashes contain `/`, and YAML 1.1 readers (PyYAML) may not know `\/`.
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let metadata = try encoder.encode(Metadata(self))
        // JSON is YAML, so the cloud-config body can be JSON after its header line.
        let userdata = Data("#cloud-config\n".utf8) + (try encoder.encode(UserData(self)))
        return [
            ExtraConfigEntry(key: Self.metadataKey, value: metadata.base64EncodedString()),
            ExtraConfigEntry(key: Self.metadataKey + ".encoding", value: "base64"),
            ExtraConfigEntry(key: Self.userdataKey, value: userdata.base64EncodedString()),
            ExtraConfigEntry(key: Self.userdataKey + ".encoding", value: "base64"),
        ]
    }

    /// Reads the configuration back from extraConfig pairs; when a key repeats (vcsim appends
    /// on every reconfigure), the last occurrence wins.
    public init(extraConfig: [ExtraConfigEntry]) throws {
        var values: [String: String] = [:]
        for entry in extraConfig { values[entry.key] = entry.value }
        try self.init(guestInfo: values)
    }

    /// Reads the configuration from already de-duplicated keys (e.g. `VMSummary.guestInfo`).
    public init(guestInfo values: [String: String]) throws {
        let metadataBytes = try Self.decodedValue(values, key: Self.metadataKey)
        let metadata: Metadata
        do {
            metadata = try JSONDecoder().decode(Metadata.self, from: metadataBytes)
        } catch {
            throw DecodingError.malformed("\(Self.metadataKey): \(error)")
        }
        var passwordHash: String?
        var user = "root"
        var authorizedKeys: [String] = []
        var sudo: String?
        if values[Self.userdataKey] != nil {
            let userdataBytes = try Self.decodedValue(values, key: Self.userdataKey)
            let header = Data("#cloud-config\n".utf8)
            guard userdataBytes.starts(with: header) else { throw DecodingError.malformed("userdata is not #cloud-config") }
            do {
                let userdata = try JSONDecoder().decode(UserData.self, from: userdataBytes.dropFirst(header.count))
                passwordHash = userdata.users.first?.hashedPassword
                user = userdata.users.first?.name ?? user
                authorizedKeys = userdata.users.first?.sshAuthorizedKeys ?? []
                sudo = userdata.users.first?.sudo
            } catch {
                throw DecodingError.malformed("\(Self.userdataKey): \(error)")
            }
        }
        var ipv4: IPv4?
        if let ethernet = metadata.network?.ethernets.values.first, let cidr = ethernet.addresses?.first {
            let parts = cidr.split(separator: "/")
            guard parts.count == 2, let prefix = Int(parts[1]) else { throw DecodingError.malformed("address \(cidr)") }
            ipv4 = IPv4(
                address: String(parts[0]), prefixLength: prefix, gateway: ethernet.gateway4, dns: ethernet.nameservers?.addresses ?? [])
        }
        self.init(
            hostName: metadata.localHostname, ipv4: ipv4, passwordHash: passwordHash, user: user, authorizedKeys: authorizedKeys, sudo: sudo
        )
    }

    private static func decodedValue(_ values: [String: String], key: String) throws -> Data {
        guard let value = values[key] else { throw DecodingError.missingKey(key) }
        switch values[key + ".encoding"] ?? "" {
        case "base64", "b64":
            guard let data = Data(base64Encoded: value) else { throw DecodingError.malformed("\(key) is not base64") }
            return data
        case "":
            return Data(value.utf8)
        case let other:
            throw DecodingError.unsupportedEncoding(other)
        }
    }

    /// cloud-init metadata: instance identity and a netplan-v2 network.
    private struct Metadata: Codable {
        struct Network: Codable {
            var version = 2
            var ethernets: [String: Ethernet]
        }
        struct Ethernet: Codable {
            struct Match: Codable { var name: String }
            struct Nameservers: Codable { var addresses: [String] }
            var match: Match?
            var dhcp4: Bool
            var addresses: [String]?
            var gateway4: String?
            var nameservers: Nameservers?
        }

        var instanceID: String
        var localHostname: String
        var network: Network?

        enum CodingKeys: String, CodingKey {
            case instanceID = "instance-id"
            case localHostname = "local-hostname"
            case network
        }

        init(_ configuration: GuestConfiguration) {
            instanceID = "flotilla-\(configuration.hostName)"
            localHostname = configuration.hostName
            let ethernet: Ethernet
            if let ipv4 = configuration.ipv4 {
                ethernet = Ethernet(
                    match: Ethernet.Match(name: "e*"),
                    dhcp4: false,
                    addresses: ["\(ipv4.address)/\(ipv4.prefixLength)"],
                    gateway4: ipv4.gateway,
                    nameservers: ipv4.dns.isEmpty ? nil : Ethernet.Nameservers(addresses: ipv4.dns)
                )
            } else {
                ethernet = Ethernet(match: Ethernet.Match(name: "e*"), dhcp4: true)
            }
            network = Network(ethernets: ["primary": ethernet])
        }
    }

    /// cloud-config: host name, and the user with its password hash, login keys and sudo rule.
    private struct UserData: Codable {
        struct User: Codable {
            var name: String
            /// Always false: cloud-init would otherwise lock the password people log in with.
            var lockPassword: Bool
            var hashedPassword: String?
            var sshAuthorizedKeys: [String]?
            var sudo: String?

            enum CodingKeys: String, CodingKey {
                case name
                case lockPassword = "lock_passwd"
                case hashedPassword = "hashed_passwd"
                case sshAuthorizedKeys = "ssh_authorized_keys"
                case sudo
            }
        }

        var hostname: String
        var preserveHostname = false
        /// Set only with a password hash; absent, cloud-init leaves sshd's password setting alone.
        var sshPasswordAuthentication: Bool?
        /// false when the user is root: cloud-init otherwise blocks root's key logins.
        var disableRoot: Bool?
        var users: [User]

        enum CodingKeys: String, CodingKey {
            case hostname
            case preserveHostname = "preserve_hostname"
            case sshPasswordAuthentication = "ssh_pwauth"
            case disableRoot = "disable_root"
            case users
        }

        init(_ configuration: GuestConfiguration) {
            hostname = configuration.hostName
            sshPasswordAuthentication = configuration.passwordHash != nil ? true : nil
            disableRoot = configuration.user == "root" ? false : nil
            let hasUserSettings = configuration.passwordHash != nil || !configuration.authorizedKeys.isEmpty || configuration.sudo != nil
            users =
                hasUserSettings
                ? [
                    User(
                        name: configuration.user, lockPassword: false, hashedPassword: configuration.passwordHash,
                        sshAuthorizedKeys: configuration.authorizedKeys.isEmpty ? nil : configuration.authorizedKeys,
                        sudo: configuration.sudo)
                ]
                : []
        }
    }
}
