import Fluent

/// Every event published for notification, kept to deduplicate and to fold a storm into a digest.
struct CreateNotificationEvents: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(NotificationEventRecord.schema)
            .id()
            .field("fingerprint", .string, .required)
            .field("stream", .string, .required)
            .field("source", .string, .required)
            .field("kind", .string, .required)
            .field("vm_name", .string)
            .field("vm_role", .string)
            .field("host_ip", .string)
            .field("service", .string)
            .field("attempts", .int)
            .field("outage_started_at", .datetime)
            .field("occurred_at", .datetime, .required)
            .field("details", .string)
            .field("owners", .string)
            .field("state", .string, .required)
            .field("message_id", .uuid)
            .field("created_at", .datetime)
            .unique(on: "fingerprint")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(NotificationEventRecord.schema).delete()
    }
}
