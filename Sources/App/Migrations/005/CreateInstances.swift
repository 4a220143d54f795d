import Fluent

/// The instances sharing the database, with their heartbeats (SPEC BEY-8).
struct CreateInstances: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(InstanceRecord.schema)
            .id()
            .field("address", .string, .required)
            .field("version", .string, .required)
            .field("started_at", .datetime, .required)
            .field("last_heartbeat_at", .datetime, .required)
            .field("stopped_at", .datetime)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(InstanceRecord.schema).delete()
    }
}
