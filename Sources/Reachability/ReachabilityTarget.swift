#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One address to watch, with the TCP port that answers for it when ICMP cannot (a role's
/// service port, or sshd's 22 for any guest).
public struct ReachabilityTarget: Hashable, Sendable, CustomStringConvertible {
    /// The address in dotted-quad form, as the system's `inet_ntop` writes it.
    public let address: String
    /// The port for the TCP fallback and second opinion; `nil` uses `SweepSettings.fallbackPort`
    /// when ICMP is unavailable and skips the second opinion.
    public let port: UInt16?
    /// The address in host byte order: what probes send to and replies are matched against.
    let addressValue: UInt32

    /// Nil when `address` is not an IPv4 address in dotted-quad form.
    public init?(address: String, port: UInt16? = nil) {
        var parsed = in_addr()
        guard inet_pton(AF_INET, address, &parsed) == 1 else { return nil }
        self.addressValue = UInt32(bigEndian: parsed.s_addr)
        self.address = Self.format(addressValue)
        self.port = port
    }

    public var description: String {
        port.map { "\(address):\($0)" } ?? address
    }

    static func format(_ value: UInt32) -> String {
        var address = in_addr(s_addr: value.bigEndian)
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        guard inet_ntop(AF_INET, &address, &text, socklen_t(text.count)) != nil else { return "" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
