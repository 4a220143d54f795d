import Foundation

/// `agent.configure`: a role's changed monitor settings (and a fresh credential) pushed to one
/// VM whose agent is installed; the agent reloads without a restart (SPEC MON-2).
struct AgentConfigureStep: StepKind {
    struct Parameters: Codable, Sendable {
        var vmID: UUID
    }

    static let name = "agent.configure"
    static let rerunRule = RerunRule.idempotent
    static let attemptsOnFailure = 3

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        let operations = context.operations
        guard let vm = try await VM.find(parameters.vmID, on: context.database) else { throw FlotillaError.notFound("the VM is gone") }
        let configuration = try await AgentCredentials(database: context.database, secrets: operations.secrets, identities: nil)
            .configurationFile(for: vm)
        try await GuestAgent(operations: operations).configure(parameters.vmID, configuration: configuration, context: context)
    }
}
