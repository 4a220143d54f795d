import Fluent
import Foundation

/// `agent.install`: the monitor agent, its role's configuration and a fresh credential on one
/// VM (SPEC MON-1); a new VM is then rebooted, and the step ends only when the agent's first
/// heartbeat has arrived (after the reboot: the boot hook works). Running it again is harmless:
/// it replaces program, configuration and credential, and the boot hook is added once.
struct AgentInstallStep: StepKind {
    struct Parameters: Codable, Sendable {
        var vmID: UUID
        var platformURL: String
        /// The agent program on the platform's machine (`agent/flotilla-agent` in the resources folder).
        var programPath: String
        /// Reboot the guest once the agent is in (new VMs); adopted VMs run their owners' work
        /// and are not rebooted. nil (steps planned before this field) means no.
        var reboot: Bool?
    }

    static let name = "agent.install"
    static let rerunRule = RerunRule.idempotent
    static let attemptsOnFailure = 2
    /// How often the step looks for the first heartbeat.
    static let heartbeatPoll = Duration.milliseconds(250)

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        guard let program = FileManager.default.contents(atPath: parameters.programPath) else {
            throw FlotillaError(.unavailable, "the agent program is missing at \(parameters.programPath)")
        }
        let operations = context.operations
        guard let vm = try await VM.find(parameters.vmID, on: context.database) else { throw FlotillaError.notFound("the VM is gone") }
        let configuration = try await AgentCredentials(database: context.database, secrets: operations.secrets, identities: nil)
            .configurationFile(for: vm, platformURL: parameters.platformURL)
        let guest = GuestAgent(operations: operations)
        var heardAfter = Date()
        try await guest.install(parameters.vmID, program: Array(program), configuration: configuration, context: context)
        if parameters.reboot == true {
            try await guest.reboot(parameters.vmID, context: context)
            heardAfter = Date()
        }
        try await waitForHeartbeat(of: vm, after: heardAfter, timeout: operations.guestBootTimeout, context: context)
    }

    /// Waits until the VM's agent has sent a heartbeat later than `after` (platform clock).
    private func waitForHeartbeat(of vm: VM, after: Date, timeout: Duration, context: StepContext) async throws {
        let vmID = try vm.requireID()
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = try await AgentStatus.query(on: context.database).filter(\.$vmID == vmID).first(),
                status.lastHeartbeatAt > after
            {
                let waited = Date().timeIntervalSince(after)
                await context.log(String(format: "first heartbeat from the agent on %@ after %.1f s", vm.hostName, waited))
                return
            }
            try await Task.sleep(for: Self.heartbeatPoll)
        }
        throw FlotillaError(
            .unavailable,
            "the agent on \(vm.hostName) sent no heartbeat within \(timeout): can the guest reach the platform URL, and does it have python3?"
        )
    }
}
