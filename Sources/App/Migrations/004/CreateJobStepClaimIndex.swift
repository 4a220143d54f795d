import Fluent
import SQLKit

/// Claiming and lease takeover look for steps by status (queued, or running with an old lease).
struct CreateJobStepClaimIndex: AsyncMigration {
    func prepare(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "job_steps_status").on(JobStep.schema).column("status").column("lease_expires_at").run()
    }

    func revert(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.drop(index: "job_steps_status").run()
    }
}
