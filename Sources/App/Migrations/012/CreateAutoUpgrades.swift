import Fluent

/// The auto-upgrade switch per application and environment, with its branch filter.
struct CreateAutoUpgrades: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(AutoUpgrade.schema)
            .id()
            .field("application_id", .uuid, .required, .references(UpgradeApplication.schema, .id, onDelete: .cascade))
            .field("environment_id", .uuid, .required, .references(Environment.schema, .id, onDelete: .cascade))
            .field("enabled", .bool, .required)
            .field("branches", .string, .required)
            .field("changed_by", .string)
            .field("updated_at", .datetime)
            .unique(on: "application_id", "environment_id")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(AutoUpgrade.schema).delete()
    }
}
