/// How often and how patiently the sweeper probes. The defaults follow the dashboard's needs:
/// one sweep a second, down after three silent sweeps in a row, up at the first answer.
public struct SweepSettings: Sendable, Equatable {
    /// The sweep interval operators may choose.
    public static let intervalRange: ClosedRange<Duration> = .seconds(1)...(.seconds(60))

    /// Time from the start of one sweep to the start of the next.
    public var interval: Duration
    /// The longest an echo request, and separately a TCP connect, waits for its answer: the
    /// ceiling of the adaptive timeout, and the wait for targets nothing is known about yet (the
    /// first sweep). A sweep ends at the latest this long after its last request.
    public var timeout: Duration
    /// The shortest wait: the floor of the adaptive timeout. Between floor and ceiling each target
    /// waits RFC 6298's smoothed round trip plus four times its variation, measured from its own
    /// answers (targets that never answered use the estimate over all answers, as nmap's host
    /// discovery does), doubled for a target whose answer came after the wait. The default 100 ms
    /// is nmap's minimum round-trip timeout: on a LAN, where round trips are below a millisecond,
    /// a hundred times the usual answer. Equal to `timeout`, it turns the adaptation off.
    public var minimumTimeout: Duration
    /// The floor when none is given (or the timeout, if that is shorter).
    public static let defaultMinimumTimeout: Duration = .milliseconds(100)
    /// Extra echo requests within one sweep to addresses still silent, so a single lost packet
    /// does not count as a miss. The timeout is split evenly among the attempts.
    public var retries: Int
    /// Consecutive silent sweeps after which an address is down.
    public var downAfterMisses: Int
    /// When ICMP gets no answer from a target that names a port, try a TCP connect to it in
    /// the same sweep: a host that drops ICMP but runs its service is up.
    public var tcpSecondOpinion: Bool
    /// The port TCP probes use for targets without one when no ICMP socket can be opened.
    public var fallbackPort: UInt16
    /// The most echo requests sent per second. Bursts beyond this would overflow the reply
    /// queue and the links in between without making a sweep noticeably shorter.
    public var maxPacketsPerSecond: Int
    /// The most TCP connects open at once (each is a socket; this bounds them).
    public var maxConnectsInFlight: Int

    public init(
        interval: Duration = .seconds(1), timeout: Duration = .milliseconds(500),
        minimumTimeout: Duration? = nil, retries: Int = 0, downAfterMisses: Int = 3, tcpSecondOpinion: Bool = true,
        fallbackPort: UInt16 = 22,
        maxPacketsPerSecond: Int = 50_000, maxConnectsInFlight: Int = 256
    ) {
        self.interval = interval
        self.timeout = timeout
        self.minimumTimeout = minimumTimeout ?? min(Self.defaultMinimumTimeout, timeout)
        self.retries = retries
        self.downAfterMisses = downAfterMisses
        self.tcpSecondOpinion = tcpSecondOpinion
        self.fallbackPort = fallbackPort
        self.maxPacketsPerSecond = maxPacketsPerSecond
        self.maxConnectsInFlight = maxConnectsInFlight
    }

    /// Throws `ReachabilityError.invalidSetting` naming the first value out of range.
    public func validate() throws {
        func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
            if !condition { throw ReachabilityError.invalidSetting(message()) }
        }
        try require(Self.intervalRange.contains(interval), "interval must be 1 to 60 seconds, not \(interval)")
        try require(timeout >= .milliseconds(10) && timeout < interval, "timeout must be at least 10 ms and shorter than the interval")
        try require(
            minimumTimeout >= .milliseconds(1) && minimumTimeout <= timeout,
            "minimum timeout must be 1 ms to the timeout, not \(minimumTimeout)")
        try require((0...10).contains(retries), "retries must be 0 to 10, not \(retries)")
        try require((1...100).contains(downAfterMisses), "down threshold must be 1 to 100 misses, not \(downAfterMisses)")
        try require(fallbackPort != 0, "fallback port must not be 0")
        try require((100...1_000_000).contains(maxPacketsPerSecond), "packet rate must be 100 to 1,000,000 per second")
        try require((1...4096).contains(maxConnectsInFlight), "concurrent TCP connects must be 1 to 4096")
    }
}
