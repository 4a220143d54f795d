import Fluent

/// The durable delivery queue: one row per message and recipient (mail) or webhook.
struct CreateNotificationDeliveries: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(NotificationDelivery.schema)
            .id()
            .field("message_id", .uuid, .required)
            .field("kind", .string, .required)
            .field("channel", .string, .required)
            .field("webhook_id", .uuid)
            .field("target", .string, .required)
            .field("subject", .string, .required)
            .field("body", .string, .required)
            .field("status", .string, .required)
            .field("attempts", .int, .required)
            .field("next_attempt_at", .datetime, .required)
            .field("claimed_until", .datetime)
            .field("last_status_code", .int)
            .field("last_error", .string)
            .field("created_at", .datetime)
            .field("delivered_at", .datetime)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(NotificationDelivery.schema).delete()
    }
}
