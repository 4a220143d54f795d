import Fluent
import SQLKit

/// Failed sign-ins, for the lockout.
struct CreateLoginFailures: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(LoginFailure.schema)
            .id()
            .field("username", .string, .required)
            .field("ip", .string, .required)
            .field("at", .datetime, .required)
            .create()

        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "login_failures_username").on(LoginFailure.schema).column("username").column("at").run()
        try await sql.create(index: "login_failures_ip").on(LoginFailure.schema).column("ip").column("at").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(LoginFailure.schema).delete()
    }
}
