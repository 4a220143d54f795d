import Fluent

/// Revisions that were rolled back and must not be applied again automatically (issue 12 §4).
struct CreateUpgradeBadRevisions: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(UpgradeBadRevision.schema)
            .id()
            .field("application_id", .uuid, .required, .references(UpgradeApplication.schema, .id, onDelete: .cascade))
            .field("revision", .string, .required)
            .field("reason", .string, .required)
            .field("marked_by", .string, .required)
            .field("created_at", .datetime)
            .unique(on: "application_id", "revision")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(UpgradeBadRevision.schema).delete()
    }
}
