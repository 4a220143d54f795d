import Foundation
import VSphere

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
        guard let address = IPv4Address(ip.trimmingCharacters(in: .whitespaces)) else {
            throw FlotillaError.validation("IP address '\(ip.prefix(64))' is not an IPv4 address")
        }
        guard let prefix = Self.prefixLength(netmask.trimmingCharacters(in: .whitespaces)) else {
            throw FlotillaError.validation("netmask '\(netmask.prefix(64))' is not a prefix length (8–30) or a contiguous dotted netmask")
        }
        guard let gatewayAddress = IPv4Address(gateway.trimmingCharacters(in: .whitespaces)) else {
            throw FlotillaError.validation("gateway '\(gateway.prefix(64))' is not an IPv4 address")
        }
        guard address.network(prefixLength: prefix) == gatewayAddress.network(prefixLength: prefix) else {
            throw FlotillaError.validation(
                "gateway \(gatewayAddress) is outside the subnet \(address.network(prefixLength: prefix))/\(prefix)")
        }
        guard address != gatewayAddress else { throw FlotillaError.validation("the IP address and the gateway are the same") }
        guard address != address.network(prefixLength: prefix), address != address.broadcast(prefixLength: prefix) else {
            throw FlotillaError.validation("\(address) is the network or broadcast address of its subnet")
        }
        func dns(_ text: String?, _ field: String) throws -> String? {
            guard let text = text?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            guard let server = IPv4Address(text) else {
                throw FlotillaError.validation("\(field) '\(text.prefix(64))' is not an IPv4 address")
            }
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
                label.first != "-", label.last != "-"
            else {
                throw FlotillaError.validation(
                    "host name '\(name.prefix(64))' is not valid: use letters, digits and inner hyphens, up to 63 per label")
            }
        }
    }

    static func prefixLength(_ text: String) -> Int? {
        let digits = text.hasPrefix("/") ? String(text.dropFirst()) : text
        if let prefix = Int(digits), digits.allSatisfy(\.isNumber) {
            return (8...30).contains(prefix) ? prefix : nil
        }
        guard let prefix = IPv4Address.prefixLength(netmask: text), (8...30).contains(prefix) else { return nil }
        return prefix
    }
}
