import Fluent

/// Leases that let one instance at a time lead each periodic task (SPEC BEY-8).
struct CreateLeaderLeases: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(LeaderLease.schema)
            .field("task", .string, .identifier(auto: false))
            .field("holder", .uuid)
            .field("expires_at", .datetime, .required)
            .field("acquired_at", .datetime)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(LeaderLease.schema).delete()
    }
}
