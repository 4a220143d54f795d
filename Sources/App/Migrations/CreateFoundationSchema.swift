import Fluent
import SQLKit

/// Users, API tokens, sign-in failures and the audit log.
struct CreateFoundationSchema: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(User.schema)
            .id()
            .field("username", .string, .required)
            .field("password_hash", .string, .required)
            .field("role", .string, .required)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .unique(on: "username")
            .create()

        try await database.schema(APIToken.schema)
            .id()
            .field("user_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("name", .string, .required)
            .field("token_digest", .string, .required)
            .field("created_at", .datetime)
            .field("last_used_at", .datetime)
            .unique(on: "token_digest")
            .create()

        try await database.schema(LoginFailure.schema)
            .id()
            .field("username", .string, .required)
            .field("ip", .string, .required)
            .field("at", .datetime, .required)
            .create()

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
        try await sql.create(index: "login_failures_username").on(LoginFailure.schema).column("username").column("at").run()
        try await sql.create(index: "login_failures_ip").on(LoginFailure.schema).column("ip").column("at").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(LogEntry.schema).delete()
        try await database.schema(LoginFailure.schema).delete()
        try await database.schema(APIToken.schema).delete()
        try await database.schema(User.schema).delete()
    }
}
