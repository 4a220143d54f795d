/// An IPv4 address as a number, parsed strictly (four decimal octets, no leading zeros) so that
/// a value from a form or from guest metadata can be passed to `ip` and written into config
/// files safely. The one IPv4 type of the App, the Lab and this library.
public struct IPv4Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: UInt32

    public init(_ value: UInt32) {
        self.value = value
    }

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), part.allSatisfy(\.isNumber),
                part == "0" || !part.hasPrefix("0"), let octet = UInt8(part)
            else { return nil }
            value = value << 8 | UInt32(octet)
        }
        self.value = value
    }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }

    /// The network address of this address's subnet.
    public func network(prefixLength: Int) -> IPv4Address { IPv4Address(value & Self.mask(prefixLength)) }

    /// The broadcast address of this address's subnet.
    public func broadcast(prefixLength: Int) -> IPv4Address { IPv4Address(value | ~Self.mask(prefixLength)) }

    /// The dotted netmask of a prefix length, e.g. 24 → 255.255.255.0.
    public static func netmask(prefixLength: Int) -> IPv4Address { IPv4Address(mask(prefixLength)) }

    /// The prefix length of a dotted netmask (255.255.240.0 → 20), or nil when the text is not
    /// an address or its one-bits are not contiguous from the left.
    public static func prefixLength(netmask text: some StringProtocol) -> Int? {
        guard let mask = IPv4Address(text) else { return nil }
        let prefix = mask.value.nonzeroBitCount
        return mask.value == Self.mask(prefix) ? prefix : nil
    }

    static func mask(_ prefixLength: Int) -> UInt32 {
        prefixLength <= 0 ? 0 : UInt32.max << (32 - min(prefixLength, 32))
    }
}
