import Fluent

/// Webhook endpoints notifications are posted to (SPEC BEY-6); each secret is sealed.
struct CreateWebhooks: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(Webhook.schema)
            .id()
            .field("name", .string, .required)
            .field("url", .string, .required)
            .field("sealed_secret", .string, .required)
            .field("created_at", .datetime)
            .unique(on: "name")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Webhook.schema).delete()
    }
}
