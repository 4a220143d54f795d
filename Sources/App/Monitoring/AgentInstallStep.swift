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
        let installed = Date()
        try await guest.install(parameters.vmID, program: Array(program), configuration: configuration, context: context)
        let running = try await waitForHeartbeat(
            of: vm, after: installed, from: .any, timeout: operations.guestBootTimeout, context: context)
        await context.log("the installed agent reports")
        guard parameters.reboot == true else { return }
        try await guest.reboot(parameters.vmID, context: context)
        // The agent running before the reboot may still be heard once while the guest goes down:
        // only a heartbeat of another agent process is the boot hook's.
        _ = try await waitForHeartbeat(
            of: vm, after: Date(), from: .anotherProcessThan(running), timeout: operations.guestBootTimeout, context: context)
        await context.log("the agent started at boot reports")
    }

    /// Which agent process a heartbeat must come from.
    private enum Sender {
        case any
        /// Another process than the one with this instance (nil: an agent that sends none).
        case anotherProcessThan(String?)

        func matches(_ instance: String?) -> Bool {
            switch self {
            case .any: true
            case .anotherProcessThan(let earlier): instance != nil && instance != earlier
            }
        }
    }

    /// Waits until the VM's agent has sent a heartbeat later than `after` (platform clock) from
    /// `sender`; returns the instance of the agent process that sent it.
    private func waitForHeartbeat(
        of vm: VM, after: Date, from sender: Sender, timeout: Duration, context: StepContext
    ) async throws -> String? {
        let vmID = try vm.requireID()
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = try await AgentStatus.query(on: context.database).filter(\.$vmID == vmID).first(),
                status.lastHeartbeatAt > after, sender.matches(status.agentInstance)
            {
                let waited = Date().timeIntervalSince(after)
                await context.log(String(format: "first heartbeat from the agent on %@ after %.1f s", vm.hostName, waited))
                return status.agentInstance
            }
            try await Task.sleep(for: Self.heartbeatPoll)
        }
        throw FlotillaError(
            .unavailable,
            "the agent on \(vm.hostName) sent no heartbeat within \(timeout): can the guest reach the platform URL, and does it have python3?"
        )
    }
}
