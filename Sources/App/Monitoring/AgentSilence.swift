import Fluent
import Vapor

/// Marks agents silent after three missed heartbeats (SPEC MON-4): a periodic task led by one
/// instance (`PeriodicTasks`) audits and notifies once per silence; the next heartbeat ends it
/// (`AgentIngestion.heartbeat`).
enum AgentSilence {
    static let heartbeatSeconds = 5
    static let missedHeartbeats = 3

    static func register(on app: Application) throws {
        try app.periodic.register(name: "agent-silence", interval: .seconds(heartbeatSeconds)) { context in
            try await markSilent(database: context.database, notifications: app.notifications, logger: context.logger)
        }
    }

    /// The VMs whose agent is silent now, with the moment it fell silent: what the dashboard shows
    /// as the reason a VM is not healthy. One query over `agent_statuses` (one row per VM).
    static func silentAgents(on database: any Database) async throws -> [UUID: Date] {
        let rows = try await AgentStatus.query(on: database).filter(\.$silentSince != nil).all()
        return Dictionary(rows.compactMap { row in row.silentSince.map { (row.vmID, $0) } }, uniquingKeysWith: { first, _ in first })
    }

    /// One pass: every agent not heard for three heartbeat intervals becomes silent. Returns how many.
    @discardableResult
    static func markSilent(database: any Database, notifications: Notifications, logger: Logger, now: Date = Date()) async throws -> Int {
        let deadline = now.addingTimeInterval(-Double(heartbeatSeconds * missedHeartbeats))
        let quiet = try await AgentStatus.query(on: database).filter(\.$silentSince == nil).filter(\.$lastHeartbeatAt < deadline).all()
        for status in quiet {
            try Task.checkCancellation()
            status.silentSince = now
            try await status.save(on: database)
            let vm = try await VM.query(on: database).filter(\.$id == status.vmID).with(\.$role).first()
            let heard = Int(now.timeIntervalSince(status.lastHeartbeatAt))
            await AuditLog.record(
                .error, action: "agent.silent", result: .failure,
                details: "monitor agent on \(vm?.ip ?? "?") is silent: no heartbeat for \(heard) s", vmName: vm?.hostName,
                vmRole: vm?.role.name, by: .system, on: database, logger: logger)
            do {
                try await notifications.publish(
                    NotificationEvent(
                        source: .agent, kind: .agentSilent, vmName: vm?.hostName, vmRole: vm?.role.name, hostIP: vm?.ip,
                        occurredAt: now, details: "no heartbeat for \(heard) s"))
            } catch {
                logger.error("could not publish a silent agent: \(FlotillaError.describe(error))")
            }
        }
        return quiet.count
    }
}
