import Fluent

/// Events the agents reported, stored once per (VM, epoch, sequence) however often they arrive.
struct CreateAgentEvents: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(AgentEventRecord.schema)
            .id()
            .field("vm_id", .uuid, .required, .references(VM.schema, .id, onDelete: .cascade))
            .field("epoch", .string, .required)
            .field("sequence", .int64, .required)
            .field("kind", .string, .required)
            .field("service", .string, .required)
            .field("attempts", .int, .required)
            .field("outage_started_at", .datetime)
            .field("occurred_at", .datetime, .required)
            .field("received_at", .datetime, .required)
            .unique(on: "vm_id", "epoch", "sequence")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(AgentEventRecord.schema).delete()
    }
}
