import VSphere

/// An IPv4 network in CIDR notation, e.g. the lab range `10.77.0.0/16`.
public struct IPv4Network: Hashable, Sendable, CustomStringConvertible {
    public let base: IPv4Address
    public let prefixLength: Int

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(parts[0]),
            parts[1].allSatisfy(\.isNumber), let prefix = Int(parts[1]), (0...32).contains(prefix)
        else { return nil }
        self.init(containing: address, prefixLength: prefix)
    }

    public init(containing address: IPv4Address, prefixLength: Int) {
        self.prefixLength = prefixLength
        self.base = IPv4Address(address.value & Self.mask(prefixLength))
    }

    public var description: String { "\(base)/\(prefixLength)" }

    public var broadcast: IPv4Address { IPv4Address(base.value | ~Self.mask(prefixLength)) }

    /// The first usable address: the lab puts its gateway (the bridge) there.
    public var firstHost: IPv4Address { IPv4Address(base.value + 1) }

    public func contains(_ address: IPv4Address) -> Bool {
        address.value & Self.mask(prefixLength) == base.value
    }

    /// True when every address of `other` is in this network.
    public func contains(_ other: IPv4Network) -> Bool {
        other.prefixLength >= prefixLength && contains(other.base)
    }

    private static func mask(_ prefixLength: Int) -> UInt32 {
        IPv4Address.netmask(prefixLength: prefixLength).value
    }
}
