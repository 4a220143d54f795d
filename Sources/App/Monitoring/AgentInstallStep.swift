import Foundation

/// `agent.install`: the monitor agent, its role's configuration and a fresh credential on one
/// VM (SPEC MON-1). Running it again is harmless: it replaces program, configuration and
/// credential, and the boot hook is added once.
struct AgentInstallStep: StepKind {
    struct Parameters: Codable, Sendable {
        var vmID: UUID
        var platformURL: String
        /// The agent program on the platform's machine (`agent/flotilla-agent` in the resources folder).
        var programPath: String
    }

    static let name = "agent.install"
    static let rerunRule = RerunRule.idempotent
    static let attemptsOnFailure = 2

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        guard let program = FileManager.default.contents(atPath: parameters.programPath) else {
            throw FlotillaError(.unavailable, "the agent program is missing at \(parameters.programPath)")
        }
        let operations = context.operations
        guard let vm = try await VM.find(parameters.vmID, on: context.database) else { throw FlotillaError.notFound("the VM is gone") }
        let configuration = try await AgentCredentials(database: context.database, secrets: operations.secrets, identities: nil)
            .configurationFile(for: vm, platformURL: parameters.platformURL)
        try await GuestAgent(operations: operations).install(
            parameters.vmID, program: Array(program), configuration: configuration, context: context)
    }
}
