import Fluent
import SQLKit

/// Which instance runs a step and until when (its lease), so that a step whose instance died
/// is taken over, and nothing else is.
struct AddJobStepLease: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(JobStep.schema).field("lease_owner", .uuid).update()
        try await database.schema(JobStep.schema).field("lease_expires_at", .datetime).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(JobStep.schema).deleteField("lease_expires_at").update()
        try await database.schema(JobStep.schema).deleteField("lease_owner").update()
    }
}
