import Crypto
import Vapor

/// Something an owner should hear about (SPEC BEY-6, MON-3, MON-4). Every source — monitor
/// agents now, upgrades and configuration later — hands one to `Notifications.publish`, and
/// one policy decides who hears about it and how often.
public struct NotificationEvent: Sendable, Codable, Equatable {
    public enum Source: String, Sendable, Codable, CaseIterable {
        case agent, upgrade, configuration
    }

    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// A dead service was started again on the first attempt.
        case restarted
        /// A dead service came back after `attempts` attempts.
        case recovered
        /// The attempt limit was reached; the agent only re-probes from now on.
        case gaveUp = "gave_up"
        /// A service given up on runs again.
        case recoveredFromGivingUp = "recovered_from_giving_up"
        /// The VM's agent missed three heartbeats.
        case agentSilent = "agent_silent"
        /// A silent agent sends heartbeats again.
        case agentBack = "agent_back"
        /// A rolling upgrade stopped because a VM was unhealthy afterwards.
        case rolloutHalted = "rollout_halted"
        /// A configuration change was put back because a service was unhealthy afterwards.
        case configReverted = "config_reverted"

        /// How the event reads in a subject line, after the service and VM.
        var phrase: String {
            switch self {
            case .restarted: "was restarted"
            case .recovered: "recovered"
            case .gaveUp: "is down: gave up restarting"
            case .recoveredFromGivingUp: "is running again after giving up"
            case .agentSilent: "monitor agent is silent"
            case .agentBack: "monitor agent reports again"
            case .rolloutHalted: "rollout halted"
            case .configReverted: "configuration reverted"
            }
        }
    }

    public var source: Source
    public var kind: Kind
    public var vmName: String?
    public var vmRole: String?
    public var hostIP: String?
    /// Nil for events about the whole VM (a silent agent).
    public var service: String?
    /// Restart attempts made, where the source counts them.
    public var attempts: Int?
    /// When the outage began, where there was one.
    public var outageStartedAt: Date?
    public var occurredAt: Date
    public var details: String?
    /// User names of the owners; empty means the system administrators.
    public var owners: [String]

    public init(
        source: Source, kind: Kind, vmName: String? = nil, vmRole: String? = nil, hostIP: String? = nil, service: String? = nil,
        attempts: Int? = nil, outageStartedAt: Date? = nil, occurredAt: Date = Date(), details: String? = nil, owners: [String] = []
    ) {
        self.source = source
        self.kind = kind
        self.vmName = vmName
        self.vmRole = vmRole
        self.hostIP = hostIP
        self.service = service
        self.attempts = attempts
        self.outageStartedAt = outageStartedAt
        self.occurredAt = occurredAt
        self.details = details
        self.owners = owners
    }

    static let maximumFieldLength = 255
    static let maximumDetailsLength = 2000

    /// Refuses control characters (a value that could end a mail header or a log line) and
    /// oversized values: events may carry what an agent on a guest sent.
    func validate() throws {
        let fields: [(String, String?)] = [
            ("vmName", vmName), ("vmRole", vmRole), ("hostIP", hostIP), ("service", service),
        ]
        for (name, value) in fields {
            guard let value else { continue }
            try Self.checkText(value, field: name, limit: Self.maximumFieldLength)
        }
        if let details { try Self.checkText(details, field: "details", limit: Self.maximumDetailsLength) }
        for owner in owners { try UserAdministration.validateUsername(owner) }
        if let attempts, attempts < 0 { throw FlotillaError.validation("attempts cannot be negative") }
        guard vmName != nil || hostIP != nil else { throw FlotillaError.validation("an event names its VM or host IP") }
    }

    private static func checkText(_ value: String, field: String, limit: Int) throws {
        guard value.count <= limit else { throw FlotillaError.validation("\(field) has at most \(limit) characters") }
        guard !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == "\u{2028}" || $0 == "\u{2029}" })
        else {
            throw FlotillaError.validation("\(field) may not contain line breaks or control characters")
        }
    }

    /// The rate-limit key: one service on one VM (or the VM itself).
    var stream: String {
        "\(vmName ?? hostIP ?? "")/\(service ?? "")"
    }

    /// The same event published twice (an agent resending after a lost answer) has the same print.
    var fingerprint: String {
        let parts = [
            source.rawValue, kind.rawValue, vmName ?? "", hostIP ?? "", service ?? "", attempts.map(String.init) ?? "",
            String(Int64((occurredAt.timeIntervalSince1970 * 1000).rounded())), details ?? "",
        ]
        return SHA256.hash(data: Data(parts.joined(separator: "\u{1F}").utf8)).hex
    }
}

extension NotificationEventRecord {
    convenience init(_ event: NotificationEvent, state: NotificationEventState) {
        self.init()
        fingerprint = event.fingerprint
        stream = event.stream
        source = event.source.rawValue
        kind = event.kind.rawValue
        vmName = event.vmName
        vmRole = event.vmRole
        hostIP = event.hostIP
        service = event.service
        attempts = event.attempts
        outageStartedAt = event.outageStartedAt
        occurredAt = event.occurredAt
        details = event.details
        owners = event.owners.isEmpty ? nil : event.owners.joined(separator: ",")
        self.state = state
    }

    var event: NotificationEvent {
        NotificationEvent(
            source: NotificationEvent.Source(rawValue: source) ?? .agent, kind: NotificationEvent.Kind(rawValue: kind) ?? .restarted,
            vmName: vmName, vmRole: vmRole, hostIP: hostIP, service: service, attempts: attempts, outageStartedAt: outageStartedAt,
            occurredAt: occurredAt, details: details, owners: owners.map { $0.split(separator: ",").map(String.init) } ?? [])
    }
}
