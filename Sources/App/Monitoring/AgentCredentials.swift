import Fluent
import Vapor

/// Makes a VM's agent credential and the agent's configuration file (what `agent.install` and
/// `agent.configure` write to `/etc/flotilla-agent/config.json`). The secret is random, sealed
/// at rest, and leaves the platform only inside that file, over the VM's pinned SSH login.
struct AgentCredentials {
    let database: any Database
    let secrets: SecretBox
    /// This instance's cache; other instances reload on the first signature the old secret fails.
    let identities: AgentIdentities?

    /// Checks a platform URL as agents will use it: http(s), a host, nothing a header could trip on.
    static func validatePlatformURL(_ text: String) throws -> String {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.count <= 300, let url = URL(string: trimmed), ["http", "https"].contains(url.scheme ?? ""), url.host != nil,
            url.user == nil, url.query == nil, url.fragment == nil,
            !trimmed.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value > 0x7E })
        else {
            throw FlotillaError.validation("the platform URL is an http(s) URL the VMs can reach, e.g. https://flotilla.example:8443")
        }
        return trimmed
    }

    /// A new secret for the VM, replacing any earlier one; returns it unsealed, once.
    func issue(for vmID: UUID, platformURL: String) async throws -> String {
        let secret = [UInt8].random(count: 32).base64URLEncodedString()
        let sealed = try secrets.seal(secret)
        try await database.transaction { transaction in
            try await AgentCredential.query(on: transaction).filter(\.$vmID == vmID).delete()
            try await AgentCredential(vmID: vmID, secretSealed: sealed, platformURL: platformURL).create(on: transaction)
        }
        identities?.forget(vmID)
        return secret
    }

    /// The agent's configuration for a VM: its identity, a fresh credential and its role's
    /// services. Without `platformURL` the one the VM's agent already uses.
    func configurationFile(for vm: VM, platformURL: String? = nil) async throws -> String {
        let vmID = try vm.requireID()
        let existing = try await AgentCredential.query(on: database).filter(\.$vmID == vmID).first()
        guard let url = platformURL ?? existing?.platformURL else {
            throw FlotillaError.conflict("\(vm.hostName) has no monitor agent yet: install it first")
        }
        let services = try await RoleMonitors(database: database).services(of: vm.$role.id)
        let secret = try await issue(for: vmID, platformURL: url)
        let file: [String: AgentConfigValue] = [
            "platform_url": .text(url), "vm_id": .text(vmID.uuidString), "credential": .text(secret),
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
