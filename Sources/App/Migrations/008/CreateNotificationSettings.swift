import Fluent

/// Notification settings changed from the web page and the API (one row).
struct CreateNotificationSettings: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(NotificationSettings.schema)
            .id()
            .field("rate_limit_seconds", .int, .required)
            .field("updated_at", .datetime)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(NotificationSettings.schema).delete()
    }
}
