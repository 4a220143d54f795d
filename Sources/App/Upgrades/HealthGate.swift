import Fluent
import Foundation

/// How an application's health is judged after a switch (issue 12 §1): an HTTP URL fetched on
/// the guest, a command run in the current release, or every service the monitor agent
/// watches reported running for 30 s.
enum HealthCheck: Sendable, Equatable {
    case http(String)
    case command(String)
    case services

    static let servicesSteadySeconds: TimeInterval = 30

    init(kind: String, target: String) throws {
        switch kind {
        case "http":
            guard let components = URLComponents(string: target), ["http", "https"].contains(components.scheme ?? ""),
                components.host?.isEmpty == false, !UserValue.hasControlCharacters(target), target.count <= 2048
            else { throw FlotillaError.validation("the health check URL must be an http or https URL, e.g. http://127.0.0.1:8000/version") }
            self = .http(target)
        case "command":
            let command = target.trimmingCharacters(in: .whitespaces)
            guard !command.isEmpty, command.count <= 1000, !UserValue.hasControlCharacters(command) else {
                throw FlotillaError.validation("the health check command must be one line of up to 1000 characters")
            }
            self = .command(command)
        case "services":
            self = .services
        default:
            throw FlotillaError.validation("the health check is \"http\", \"command\" or \"services\"")
        }
    }

    /// Whether one VM is healthy now, on the release it switched to by `switchedBy`.
    func isHealthy(
        _ guest: GuestReleases, vmID: UUID, deployDirectory: String, switchedBy: Date, database: any Database, now: Date = Date()
    ) async -> Bool {
        switch self {
        case .http(let url):
            return (try? await guest.urlIsHealthy(url)) ?? false
        case .command(let command):
            return (try? await guest.commandIsHealthy(command, deployDirectory: deployDirectory)) ?? false
        case .services:
            guard let status = try? await AgentStatus.query(on: database).filter(\.$vmID == vmID).first() else { return false }
            return Self.servicesSteady(status, switchedBy: switchedBy, now: now)
        }
    }

    /// Every watched service running for 30 s on the new release: told by a heartbeat of the
    /// last 10 s that was sent at least 30 s after the switch. A heartbeat from before the switch
    /// (or from just after it, before the agent saw a restart) says nothing about the new release.
    static func servicesSteady(_ status: AgentStatus, switchedBy: Date, now: Date) -> Bool {
        let services = status.services
        let heartbeat = status.lastHeartbeatAt
        guard status.silentSince == nil, now.timeIntervalSince(heartbeat) <= 10,
            heartbeat.timeIntervalSince(switchedBy) >= servicesSteadySeconds, !services.isEmpty
        else { return false }
        return services.allSatisfy { $0.state == "running" && heartbeat.timeIntervalSince1970 - $0.since >= servicesSteadySeconds }
    }
}
