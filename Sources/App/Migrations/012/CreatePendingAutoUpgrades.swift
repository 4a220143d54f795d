import Fluent

/// Bursts of hooked commits waiting for their quiet period: one row per application and environment.
struct CreatePendingAutoUpgrades: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(PendingAutoUpgrade.schema)
            .id()
            .field("application_id", .uuid, .required, .references(UpgradeApplication.schema, .id, onDelete: .cascade))
            .field("environment_id", .uuid, .required, .references(Environment.schema, .id, onDelete: .cascade))
            .field("hook_id", .uuid, .required, .references(UpgradeHook.schema, .id, onDelete: .cascade))
            .field("revision", .string, .required)
            .field("revision_order", .int64, .required)
            .field("pushed_by", .string, .required)
            .field("deliveries", .int, .required)
            .field("first_at", .datetime, .required)
            .field("due_at", .datetime, .required)
            .unique(on: "application_id", "environment_id")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(PendingAutoUpgrade.schema).delete()
    }
}
