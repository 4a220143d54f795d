import Fluent
import SQLKit

/// Steps of jobs, one per VM and phase.
struct CreateJobSteps: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(JobStep.schema)
            .id()
            .field("job_id", .uuid, .required, .references(Job.schema, .id, onDelete: .cascade))
            .field("position", .int, .required)
            .field("title", .string, .required)
            .field("vm_name", .string)
            .field("vm_role", .string)
            .field("status", .string, .required)
            .field("attempts", .int, .required)
            .field("log", .string, .required)
            .field("started_at", .datetime)
            .field("finished_at", .datetime)
            .create()

        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "job_steps_job").on(JobStep.schema).column("job_id").column("position").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(JobStep.schema).delete()
    }
}
