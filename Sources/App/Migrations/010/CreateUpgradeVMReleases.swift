import Fluent

/// Each VM's current and previous release of its role's application (issue 12 §5).
struct CreateUpgradeVMReleases: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(UpgradeVMRelease.schema)
            .id()
            .field("vm_id", .uuid, .required, .references(VM.schema, .id, onDelete: .cascade))
            .field("application_id", .uuid, .required, .references(UpgradeApplication.schema, .id, onDelete: .cascade))
            .field("current_release", .string)
            .field("previous_release", .string)
            .field("updated_at", .datetime)
            .unique(on: "vm_id", "application_id")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(UpgradeVMRelease.schema).delete()
    }
}
