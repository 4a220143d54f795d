import Foundation

/// What the sweeps say about one address.
public enum ReachabilityState: String, Sendable, Equatable {
    /// Not yet answered and not yet silent for the down threshold.
    case unknown
    /// Answered in the latest sweep, or silent for fewer sweeps than the down threshold.
    case up
    /// Silent for at least the down threshold of consecutive sweeps.
    case down
}

/// How a sweeper reaches its targets; chosen once, when it is made.
public enum ProbeMethod: String, Sendable, Equatable {
    /// ICMP echo over an unprivileged ICMP datagram socket (`net.ipv4.ping_group_range`).
    case icmpDatagram
    /// ICMP echo over a raw socket (root or CAP_NET_RAW).
    case icmpRaw
    /// TCP connect only: no ICMP socket could be opened.
    case tcp
}

/// Which probe method a sweeper should use.
public enum ProbePreference: Sendable, Equatable {
    /// An ICMP datagram socket where the system allows one, else a raw socket, else TCP.
    case automatic
    /// Exactly this method; making the sweeper fails when it cannot be opened.
    case only(ProbeMethod)
}

/// The latest word on one target.
public struct ReachabilityStatus: Sendable, Equatable {
    public var target: ReachabilityTarget
    public var state: ReachabilityState
    /// Round-trip time of the latest answer; nil when the latest sweep got none.
    public var roundTripTime: Duration?
    /// Which probe got the latest answer (ICMP, or a TCP connect as fallback or second opinion).
    public var answeredBy: ProbeMethod?
    /// Sweeps in a row without an answer.
    public var consecutiveMisses: Int
    /// When the state last changed; nil while unknown.
    public var since: Date?
    /// How long the latest sweep waited for this target's answer (see `SweepSettings.minimumTimeout`).
    public internal(set) var timeout: Duration?
    /// The target's own round trips, nil until it answers.
    var estimate: RoundTripEstimate?
    /// How many times the wait is doubled: once for each answer that came after it, until one
    /// comes in time (Karn's backoff; a target that never answers is not waited for longer).
    var backoff = 0

    public var address: String { target.address }
}

/// A state change, as the change stream delivers it.
public struct ReachabilityChange: Sendable, Equatable {
    public var previous: ReachabilityState
    public var status: ReachabilityStatus
}

/// One sweep's outcome, for logs and the platform's own metrics.
public struct SweepSummary: Sendable, Equatable {
    public var round: UInt64
    public var method: ProbeMethod
    /// Wall time of the sweep (sending, waiting and any TCP second opinion).
    public var duration: Duration
    public var probed: Int
    public var answered: Int
    public var changes: Int
    /// The longest any target was waited for (the adaptive timeout), zero with no targets.
    public var longestTimeout: Duration
    /// Answers to the previous sweep that came after its wait (each lengthens that target's next wait).
    public var lateAnswers: Int
}

/// A setting out of range, or a probe socket that cannot be opened.
public enum ReachabilityError: Error, Equatable, CustomStringConvertible {
    case invalidSetting(String)
    case socketUnavailable(method: ProbeMethod, errno: Int32)

    public var description: String {
        switch self {
        case .invalidSetting(let message):
            return "invalid reachability setting: \(message)"
        case .socketUnavailable(let method, let code):
            return "cannot open the \(method.rawValue) probe socket: \(String(cString: strerror(code)))"
        }
    }
}
