import Fluent

/// The delivery log: every attempt of every delivery, with the status code it got.
struct CreateNotificationAttempts: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(NotificationAttempt.schema)
            .id()
            .field("delivery_id", .uuid, .required, .references(NotificationDelivery.schema, .id, onDelete: .cascade))
            .field("number", .int, .required)
            .field("at", .datetime, .required)
            .field("outcome", .string, .required)
            .field("status_code", .int)
            .field("error", .string)
            .field("milliseconds", .int, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(NotificationAttempt.schema).delete()
    }
}
