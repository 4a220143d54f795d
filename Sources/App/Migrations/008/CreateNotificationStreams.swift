import Fluent

/// When the last message for each rate-limited stream (one service on one VM) went out.
struct CreateNotificationStreams: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(NotificationStream.schema)
            .id()
            .field("key", .string, .required)
            .field("last_message_at", .datetime, .required)
            .unique(on: "key")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(NotificationStream.schema).delete()
    }
}
