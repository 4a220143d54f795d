import Fluent

/// Rollouts of an application's revision to an environment (issue 12 §4).
struct CreateUpgradeRollouts: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(UpgradeRollout.schema)
            .id()
            .field("application_id", .uuid, .required, .references(UpgradeApplication.schema, .id, onDelete: .cascade))
            .field("environment_id", .uuid, .required, .references(Environment.schema, .id, onDelete: .cascade))
            .field("job_id", .uuid)
            .field("requested_revision", .string, .required)
            .field("revision", .string, .required)
            .field("trigger", .string, .required)
            .field("state", .string, .required)
            .field("reason", .string)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(UpgradeRollout.schema).delete()
    }
}
