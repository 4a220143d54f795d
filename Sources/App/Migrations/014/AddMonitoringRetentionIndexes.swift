import Fluent
import SQLKit

/// Lets retention (`MonitoringRetention`) find old agent events, notification events and
/// deliveries by age without reading the whole tables.
struct AddMonitoringRetentionIndexes: AsyncMigration {
    func prepare(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "agent_events_received_at").on(AgentEventRecord.schema).column("received_at").run()
        try await sql.create(index: "notification_events_created_at").on(NotificationEventRecord.schema).column("created_at").run()
        try await sql.create(index: "notification_deliveries_created_at").on(NotificationDelivery.schema).column("created_at").run()
    }

    func revert(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { return }
        for index in ["agent_events_received_at", "notification_events_created_at", "notification_deliveries_created_at"] {
            try await sql.drop(index: index).run()
        }
    }
}
