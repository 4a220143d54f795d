import Foundation

/// A VM's identity and network as a person types them (SPEC VM-6), validated before anything
/// is created: every problem is reported by field, and nothing reaches vSphere or a shell
/// unless it passed.
public struct VMSpec: Sendable, Equatable {
    public var hostName: String
    public var ip: String
    public var prefixLength: Int
    public var gateway: String
    public var dns1: String?
    public var dns2: String?

    /// - Parameter netmask: a prefix length (`24`, `/24`) or a dotted netmask (`255.255.255.0`).
    public init(hostName: String, ip: String, netmask: String, gateway: String, dns1: String?, dns2: String?) throws {
        let hostName = hostName.trimmingCharacters(in: .whitespaces).lowercased()
        try Self.validateHostName(hostName)
        guard let address = IPv4(ip.trimmingCharacters(in: .whitespaces)) else {
            throw FlotillaError.validation("IP address '\(ip.prefix(64))' is not an IPv4 address")
        }
        guard let prefix = Self.prefixLength(netmask.trimmingCharacters(in: .whitespaces)) else {
            throw FlotillaError.validation("netmask '\(netmask.prefix(64))' is not a prefix length (8–30) or a contiguous dotted netmask")
        }
        guard let gatewayAddress = IPv4(gateway.trimmingCharacters(in: .whitespaces)) else {
            throw FlotillaError.validation("gateway '\(gateway.prefix(64))' is not an IPv4 address")
        }
        guard address.network(prefix) == gatewayAddress.network(prefix) else {
            throw FlotillaError.validation("gateway \(gatewayAddress) is outside the subnet \(address.network(prefix))/\(prefix)")
        }
        guard address != gatewayAddress else { throw FlotillaError.validation("the IP address and the gateway are the same") }
        guard address != address.network(prefix), address != address.broadcast(prefix) else {
            throw FlotillaError.validation("\(address) is the network or broadcast address of its subnet")
        }
        func dns(_ text: String?, _ field: String) throws -> String? {
            guard let text = text?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            guard let server = IPv4(text) else { throw FlotillaError.validation("\(field) '\(text.prefix(64))' is not an IPv4 address") }
            return server.description
        }
        self.hostName = hostName
        self.ip = address.description
        prefixLength = prefix
        self.gateway = gatewayAddress.description
        self.dns1 = try dns(dns1, "primary DNS")
        self.dns2 = try dns(dns2, "secondary DNS")
        if self.dns1 == nil, self.dns2 != nil { throw FlotillaError.validation("give the primary DNS before the secondary") }
    }

    /// RFC 1123 host names: labels of letters, digits and inner hyphens.
    public static func validateHostName(_ name: String) throws {
        guard !name.isEmpty, name.count <= 253 else { throw FlotillaError.validation("host name must have 1 to 253 characters") }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.count <= 63, label.allSatisfy(allowed.contains),
                  label.first != "-", label.last != "-" else {
                throw FlotillaError.validation("host name '\(name.prefix(64))' is not valid: use letters, digits and inner hyphens, up to 63 per label")
            }
        }
    }

    static func prefixLength(_ text: String) -> Int? {
        let digits = text.hasPrefix("/") ? String(text.dropFirst()) : text
        if let prefix = Int(digits), digits.allSatisfy(\.isNumber) {
            return (8...30).contains(prefix) ? prefix : nil
        }
        guard let mask = IPv4(text) else { return nil }
        let prefix = mask.value.nonzeroBitCount
        guard (8...30).contains(prefix), mask.value == (prefix == 0 ? 0 : UInt32.max << (32 - prefix)) else { return nil }
        return prefix
    }
}

/// An IPv4 address as a number, for subnet arithmetic.
public struct IPv4: Hashable, Sendable, CustomStringConvertible {
    public let value: UInt32

    public init(value: UInt32) {
        self.value = value
    }

    public init?(_ text: String) {
        guard let address = IPAddress(text), address.isIPv4, !text.contains(":") else { return nil }
        value = address.bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    public func network(_ prefix: Int) -> IPv4 { IPv4(value: value & (UInt32.max << (32 - prefix))) }
    public func broadcast(_ prefix: Int) -> IPv4 { IPv4(value: value | ~(UInt32.max << (32 - prefix))) }

    public var description: String {
        [24, 16, 8, 0].map { String((value >> UInt32($0)) & 0xff) }.joined(separator: ".")
    }
}
