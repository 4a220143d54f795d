import Foundation
import Vapor

/// What agents send (the wire format of `agent/flotilla-agent`, snake_case JSON), checked
/// field by field: an agent runs on a guest whose root may be hostile.
enum AgentReport {
    static let states: Set<String> = ["unknown", "running", "down", "starting", "gave_up", "stopped"]
    static let eventKinds: [String: NotificationEvent.Kind] = [
        "restarted": .restarted, "recovered": .recovered, "gave_up": .gaveUp, "recovered_from_giving_up": .recoveredFromGivingUp,
    ]

    struct ServiceState: Codable, Equatable, Sendable {
        var name: String
        var state: String
        var restarts: Int
        var failures: Int
        var attempts: Int
        /// When the service entered its state (Unix seconds).
        var since: Double
    }

    struct Heartbeat: Decodable, Sendable {
        var vm: String
        var agentVersion: String
        var sentAt: Double
        var services: [ServiceState]
        var queuedEvents: Int
        /// Random per agent process: a heartbeat from another process than before tells a
        /// restarted agent (after a reboot) from the one that ran before.
        var instance: String?

        enum CodingKeys: String, CodingKey {
            case vm, services, instance
            case agentVersion = "agent_version"
            case sentAt = "sent_at"
            case queuedEvents = "queued_events"
        }
    }

    struct Event: Decodable, Sendable {
        var kind: String
        var service: String
        var attempts: Int
        var outageStartedAt: Double?
        var occurredAt: Double
        var sequence: Int64
        var epoch: String

        enum CodingKeys: String, CodingKey {
            case kind, service, attempts, sequence, epoch
            case outageStartedAt = "outage_started_at"
            case occurredAt = "occurred_at"
        }
    }

    struct Events: Decodable, Sendable {
        var vm: String
        var events: [Event]
    }

    static func isPlainName(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 64 && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    /// A plausible Unix time: after 2020 and not more than a day ahead.
    static func isPlausibleTime(_ seconds: Double) -> Bool {
        seconds.isFinite && seconds > 1_577_836_800 && seconds < Date().timeIntervalSince1970 + 86_400
    }

    static func validate(_ heartbeat: Heartbeat) throws {
        guard heartbeat.services.count <= MonitoredService.maximumServices,
            heartbeat.agentVersion.count <= 32,
            heartbeat.agentVersion.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == ".") }),
            heartbeat.queuedEvents >= 0,
            heartbeat.instance.map({ (1...64).contains($0.count) && $0.allSatisfy(\.isHexDigit) }) ?? true
        else { throw FlotillaError.validation("malformed heartbeat") }
        for service in heartbeat.services {
            guard isPlainName(service.name), states.contains(service.state), service.restarts >= 0, service.failures >= 0,
                service.attempts >= 0, service.since.isFinite
            else { throw FlotillaError.validation("malformed service state in heartbeat") }
        }
    }

    static func validate(_ event: Event) throws {
        guard eventKinds[event.kind] != nil, isPlainName(event.service), (0...10_000).contains(event.attempts), event.sequence > 0,
            (1...64).contains(event.epoch.count), event.epoch.allSatisfy(\.isHexDigit), isPlausibleTime(event.occurredAt),
            event.outageStartedAt.map(isPlausibleTime) ?? true
        else { throw FlotillaError.validation("malformed event") }
    }
}
