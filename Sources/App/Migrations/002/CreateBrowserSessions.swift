import Fluent

/// Sessions with hashed IDs, an expiry and their user (replaces Fluent's `_fluent_sessions`).
struct CreateBrowserSessions: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(BrowserSession.schema)
            .id()
            .field("key_digest", .string, .required)
            .field("user_id", .uuid, .references(User.schema, .id, onDelete: .cascade))
            .field("data", .string, .required)
            .field("expires_at", .datetime, .required)
            .field("updated_at", .datetime, .required)
            .unique(on: "key_digest")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(BrowserSession.schema).delete()
    }
}
