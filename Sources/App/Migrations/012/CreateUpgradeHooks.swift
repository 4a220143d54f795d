import Fluent

/// Upgrade hooks (issue 12 §6): one endpoint per repository and sender format, secret sealed.
struct CreateUpgradeHooks: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(UpgradeHook.schema)
            .id()
            .field("format", .string, .required)
            .field("repository_url", .string, .required)
            .field("secret_sealed", .string, .required)
            .field("created_by", .string)
            .field("created_at", .datetime)
            .field("last_delivery_at", .datetime)
            .field("last_result", .string)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(UpgradeHook.schema).delete()
    }
}
