import Fluent

/// Which agent process sent a VM's last heartbeat (a random value each agent makes when it
/// starts), so installing with a reboot waits for the agent the boot hook started, not for a
/// late heartbeat of the one running before the reboot.
struct AddAgentStatusInstance: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(AgentStatus.schema).field("agent_instance", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(AgentStatus.schema).deleteField("agent_instance").update()
    }
}
