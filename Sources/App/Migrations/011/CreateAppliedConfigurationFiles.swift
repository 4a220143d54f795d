import Fluent

/// What was last applied to each file of each VM, for the drift check (SPEC CFG-4).
struct CreateAppliedConfigurationFiles: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(AppliedConfigurationFile.schema)
            .id()
            .field("vm_id", .uuid, .required, .references(VM.schema, .id, onDelete: .cascade))
            .field("path", .string, .required)
            .field("profile_id", .uuid, .required, .references(ServiceProfileRecord.schema, .id, onDelete: .cascade))
            .field("version", .int, .required)
            .field("run_id", .uuid, .required)
            .field("sha256", .string, .required)
            .field("applied_at", .datetime, .required)
            .field("drift", .string)
            .field("drift_checked_at", .datetime)
            .unique(on: "vm_id", "path")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(AppliedConfigurationFile.schema).delete()
    }
}
