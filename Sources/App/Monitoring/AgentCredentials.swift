import Fluent
import Vapor

/// Makes a VM's agent credential and the agent's configuration file (what `agent.configure`
/// writes to `/etc/flotilla-agent/config.json`). The secret is random, sealed at rest, and
/// leaves the platform only inside that file, over the VM's pinned SSH connection.
struct AgentCredentials {
    let database: any Database
    let secrets: SecretBox
    let identities: AgentIdentities

    /// A new secret for the VM, replacing any earlier one; returns it unsealed, once.
    func issue(for vmID: UUID) async throws -> String {
        let secret = [UInt8].random(count: 32).base64URLEncodedString()
        let sealed = try secrets.seal(secret)
        try await database.transaction { transaction in
            try await AgentCredential.query(on: transaction).filter(\.$vmID == vmID).delete()
            try await AgentCredential(vmID: vmID, secretSealed: sealed).create(on: transaction)
        }
        identities.forget(vmID)
        return secret
    }

    /// The agent's configuration for a VM: its identity, a fresh credential and its role's services.
    func configurationFile(for vm: VM, platformURL: String) async throws -> String {
        let vmID = try vm.requireID()
        let services = try await RoleMonitors(database: database).services(of: vm.$role.id)
        let secret = try await issue(for: vmID)
        let file: [String: AgentConfigValue] = [
            "platform_url": .text(platformURL), "vm_id": .text(vmID.uuidString), "credential": .text(secret),
            "heartbeat_seconds": .number(Double(AgentSilence.heartbeatSeconds)),
            "services": .list(services.map { .object($0.agentEntry) }),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(file), as: UTF8.self) + "\n"
    }
}

extension Request {
    var agentCredentials: AgentCredentials {
        AgentCredentials(database: db, secrets: application.flotilla.secrets, identities: application.agentIdentities)
    }
}
