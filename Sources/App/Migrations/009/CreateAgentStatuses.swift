import Fluent

/// What each VM's agent said last: its services' states and when it was heard (silence, MON-4).
struct CreateAgentStatuses: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(AgentStatus.schema)
            .id()
            .field("vm_id", .uuid, .required, .references(VM.schema, .id, onDelete: .cascade))
            .field("last_heartbeat_at", .datetime, .required)
            .field("agent_version", .string, .required)
            .field("services", .string, .required)
            .field("queued_events", .int, .required)
            .field("silent_since", .datetime)
            .unique(on: "vm_id")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(AgentStatus.schema).delete()
    }
}
