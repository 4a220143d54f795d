import Fluent
import SQLKit

/// Jobs (SPEC BEY-1).
struct CreateJobs: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(Job.schema)
            .id()
            .field("kind", .string, .required)
            .field("title", .string, .required)
            .field("status", .string, .required)
            .field("operator", .string)
            .field("operator_ip", .string)
            .field("summary", .string, .required)
            .field("cancel_requested", .bool, .required)
            .field("created_at", .datetime)
            .field("started_at", .datetime)
            .field("finished_at", .datetime)
            .create()

        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "jobs_created").on(Job.schema).column("created_at").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Job.schema).delete()
    }
}
