import Fluent
import SQLKit

/// The audit log (SPEC LOG-1).
struct CreateLogEntries: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(LogEntry.schema)
            .field("id", .int, .identifier(auto: true))
            .field("kind", .string, .required)
            .field("time", .datetime, .required)
            .field("vm_name", .string)
            .field("vm_role", .string)
            .field("operator", .string)
            .field("operator_ip", .string)
            .field("action", .string, .required)
            .field("result", .string, .required)
            .field("details", .string, .required)
            .create()

        guard let sql = database as? any SQLDatabase else { return }
        // The log list is read newest first and filtered by these columns (SPEC LOG-2, LOG-3).
        try await sql.create(index: "log_entries_time").on(LogEntry.schema).column("time").run()
        try await sql.create(index: "log_entries_kind_time").on(LogEntry.schema).column("kind").column("time").run()
        try await sql.create(index: "log_entries_role_time").on(LogEntry.schema).column("vm_role").column("time").run()
        try await sql.create(index: "log_entries_ip_time").on(LogEntry.schema).column("operator_ip").column("time").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(LogEntry.schema).delete()
    }
}
