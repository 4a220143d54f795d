import Fluent
import Foundation

/// The health gate after a configuration change (SPEC CFG-5): are the restarted services healthy
/// within 30 s?
///
/// When the VM's monitor agent reports (not silent) and watches every restarted service, its
/// state decides: it runs the service's own probe and is what the dashboard shows, so the gate
/// and the dashboard cannot disagree. Its verdict counts only from heartbeats received after the
/// restart, and two in a row must say `running` (one could carry a state seen just before the
/// service fell over). Otherwise — no agent, a silent one, a service it does not watch — the
/// profile's check on the guest decides (every service running per its manager, every health port
/// answering on 127.0.0.1), also two polls in a row.
struct ServiceHealthGate: Sendable {
    enum Source: String, Sendable {
        case agent = "the monitor agent's state"
        case profileCheck = "the profile's check"
    }

    let database: any Database
    let vmID: UUID
    let services: [String]
    /// The profile's check on the guest: nil when healthy, else why not.
    let profileCheck: @Sendable () async throws -> String?
    var timeout: Duration = .seconds(30)
    var pollInterval: Duration = .milliseconds(500)

    /// Which source decides now.
    func source() async throws -> Source {
        try await agentServices() == nil ? .profileCheck : .agent
    }

    /// Waits until healthy (nil) or the timeout (why not), starting from services restarted at `restartedAt`.
    func wait(restartedAt: Date) async -> String? {
        let deadline = ContinuousClock.now + timeout
        var healthyPolls = 0
        var lastHealthyHeartbeat: Date?
        var reason = "no answer"
        while ContinuousClock.now < deadline {
            do {
                if let agent = try await agentServices() {
                    if agent.heartbeat <= restartedAt {
                        reason = "waiting for the monitor agent's first heartbeat after the restart"
                    } else if let down = services.first(where: { agent.states[$0] != "running" }) {
                        reason = "the monitor agent reports \(down) \(agent.states[down] ?? "unknown")"
                        lastHealthyHeartbeat = nil
                        healthyPolls = 0
                    } else if lastHealthyHeartbeat.map({ $0 < agent.heartbeat }) ?? true {
                        if lastHealthyHeartbeat != nil { return nil }
                        lastHealthyHeartbeat = agent.heartbeat
                        reason = "waiting for a second heartbeat of the monitor agent"
                    }
                } else if let problem = try await profileCheck() {
                    reason = problem
                    healthyPolls = 0
                } else {
                    healthyPolls += 1
                    if healthyPolls == 2 { return nil }
                }
            } catch {
                reason = FlotillaError.describe(error)
                healthyPolls = 0
            }
            try? await Task.sleep(for: pollInterval)
        }
        return "not healthy within \(timeout): \(reason)"
    }

    /// The agent's last heartbeat and service states, when it reports and watches every service.
    private func agentServices() async throws -> (heartbeat: Date, states: [String: String])? {
        guard !services.isEmpty, let status = try await AgentStatus.query(on: database).filter(\.$vmID == vmID).first(),
            status.silentSince == nil
        else { return nil }
        let states = Dictionary(status.services.map { ($0.name, $0.state) }) { first, _ in first }
        guard services.allSatisfy({ states[$0] != nil }) else { return nil }
        return (status.lastHeartbeatAt, states)
    }
}
