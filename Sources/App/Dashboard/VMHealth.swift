import Foundation
import Reachability

/// What the dashboard says about a VM (SPEC DASH-6): reachable or not, and why not.
enum VMHealth: String, Codable, Sendable, CaseIterable {
    /// Answers probes as usual.
    case up
    /// Answers, but with lost probes, a round trip far above its usual one, or a silent monitor agent.
    case degraded
    /// vSphere says powered off.
    case poweredOff
    /// vSphere says suspended.
    case suspended
    /// Powered on, but no guest runs (no Tools heartbeat, no address reported) and no answer.
    case guestNotRunning
    /// The guest runs (or vSphere cannot tell) and does not answer.
    case networkUnreachable
    /// Not probed long enough to say.
    case unknown

    /// Counts as reachable on the role cards.
    var isReachable: Bool { self == .up || self == .degraded }

    /// The words the pages show.
    var label: String {
        switch self {
        case .up: "up"
        case .degraded: "degraded"
        case .poweredOff: "powered off"
        case .suspended: "suspended"
        case .guestNotRunning: "guest not running"
        case .networkUnreachable: "network unreachable"
        case .unknown: "checking"
        }
    }
}

/// What vSphere says about a guest: VMware Tools running, a heartbeat, or an address reported.
enum GuestActivity: String, Sendable {
    case running
    case notRunning
    case unknown

    /// Reads vSphere's guest properties: Tools running, a green or yellow heartbeat, or a
    /// reported address are signs of a running guest; a red heartbeat, or Tools not running
    /// with no address, of none.
    init(toolsRunningStatus: String?, heartbeat: String?, ipAddress: String?) {
        if toolsRunningStatus == "guestToolsRunning" || heartbeat == "green" || heartbeat == "yellow"
            || !(ipAddress ?? "").isEmpty
        {
            self = .running
        } else if heartbeat == "red" || toolsRunningStatus == "guestToolsNotRunning" {
            self = .notRunning
        } else {
            self = .unknown
        }
    }
}

/// One VM's latest probe result, as the health rule needs it.
struct ProbeReading: Sendable, Equatable {
    var state: ReachabilityState
    var roundTripSeconds: Double?
    var consecutiveMisses: Int
    var answeredByTCP: Bool

    init(state: ReachabilityState, roundTripSeconds: Double? = nil, consecutiveMisses: Int = 0, answeredByTCP: Bool = false) {
        self.state = state
        self.roundTripSeconds = roundTripSeconds
        self.consecutiveMisses = consecutiveMisses
        self.answeredByTCP = answeredByTCP
    }

    init(_ status: ReachabilityStatus) {
        self.init(
            state: status.state, roundTripSeconds: status.roundTripTime.map(Self.seconds),
            consecutiveMisses: status.consecutiveMisses, answeredByTCP: status.answeredBy == .tcp)
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (whole, fraction) = duration.components
        return Double(whole) + Double(fraction) / 1e18
    }
}

/// The rule of DASH-6: a VM's health from its probe, its power state and its guest.
enum HealthRule {
    /// A round trip counts as far above the VM's usual one beyond this many times it, and at
    /// least `degradedMargin` above it (sub-millisecond baselines jitter by multiples).
    static let degradedFactor: Double = 5
    static let degradedMarginSeconds: Double = 0.05

    /// - Parameters:
    ///   - probe: the sweeper's word (nil when the VM has no probe-able address).
    ///   - baselineSeconds: the VM's usual round trip, nil until it has one.
    ///   - powerState: `poweredOn`, `poweredOff`, `suspended`, or nil when vSphere did not say.
    ///   - agentSilentSince: when the VM's monitor agent fell silent (SPEC MON-4), nil while it reports.
    static func health(
        probe: ProbeReading?, baselineSeconds: Double?, powerState: String?, guest: GuestActivity, agentSilentSince: Date? = nil
    ) -> VMHealth {
        switch powerState {
        case "poweredOff": return .poweredOff
        case "suspended": return .suspended
        default: break
        }
        guard let probe else { return .unknown }
        switch probe.state {
        case .up:
            if probe.consecutiveMisses > 0 || agentSilentSince != nil { return .degraded }
            if let rtt = probe.roundTripSeconds, let baselineSeconds,
                rtt > baselineSeconds * degradedFactor, rtt > baselineSeconds + degradedMarginSeconds
            {
                return .degraded
            }
            return .up
        case .down:
            return powerState == "poweredOn" && guest == .notRunning ? .guestNotRunning : .networkUnreachable
        case .unknown:
            return .unknown
        }
    }

    /// The reason shown beside a state, with the evidence behind it. A silent monitor agent is
    /// named first on a VM that answers (it is why the VM is degraded) and added to an
    /// unreachable one's reason; a VM that is off or not yet probed says only that.
    static func reason(_ health: VMHealth, probe: ProbeReading?, guest: GuestActivity, agentSilentSince: Date? = nil) -> String {
        let agent = agentSilentSince.map { "monitor agent silent since \($0.formatted(.iso8601))" }
        let unanswered = "\(probe?.consecutiveMisses ?? 0) probes unanswered\(agent.map { "; " + $0 } ?? "")"
        switch health {
        case .up, .degraded:
            let rtt = probe?.roundTripSeconds.map { String(format: "%.1f ms", $0 * 1000) } ?? "—"
            let method = probe?.answeredByTCP == true ? "TCP" : "ICMP"
            let lost = (probe?.consecutiveMisses ?? 0) > 0 ? ", \(probe?.consecutiveMisses ?? 0) probes lost" : ""
            return "\(health.label): \(agent.map { $0 + ", " } ?? "")\(method) \(rtt)\(lost)"
        case .poweredOff, .suspended:
            return "\(health.label) (vSphere)"
        case .guestNotRunning:
            return "guest not running: no Tools heartbeat or address, \(unanswered)"
        case .networkUnreachable:
            let guestWords = guest == .running ? "guest running" : "guest state unknown"
            return "network unreachable: \(guestWords), \(unanswered)"
        case .unknown:
            return "checking"
        }
    }
}
