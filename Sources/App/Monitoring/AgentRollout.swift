import Fluent
import Vapor

/// Starts the jobs that put agents on VMs and push a role's monitor settings to them (SPEC
/// MON-1, MON-2): one step per VM, so the job page shows each VM's result.
struct AgentRollout {
    let database: any Database
    let jobs: JobEngine
    let actor: AuditLog.Actor
    let logger: Logger
    /// The agent program shipped with the platform (`agent/flotilla-agent` beside Resources).
    let programPath: String

    func install(on vmID: UUID, platformURL: String) async throws -> UUID {
        let url = try AgentCredentials.validatePlatformURL(platformURL)
        guard let vm = try await VM.query(on: database).filter(\.$id == vmID).with(\.$role).first() else {
            throw FlotillaError.notFound("no such VM")
        }
        guard FileManager.default.isReadableFile(atPath: programPath) else {
            throw FlotillaError(.unavailable, "the agent program is missing at \(programPath)")
        }
        let step = try StepPlan(
            AgentInstallStep.self, .init(vmID: vmID, platformURL: url, programPath: programPath),
            title: "install the monitor agent on \(vm.hostName)", vmName: vm.hostName, vmRole: vm.role.name)
        return try await jobs.submit(
            kind: AgentInstallStep.name, title: "Install the monitor agent on \(vm.hostName)", by: actor, steps: [step])
    }

    /// Pushes a role's settings to every VM of the role that has an agent; nil when none has.
    func configure(role: Role) async throws -> UUID? {
        let roleID = try role.requireID()
        let installed = Set(try await AgentCredential.query(on: database).all(\.$vmID))
        let vms = try await VM.query(on: database).filter(\.$role.$id == roleID).sort(\.$hostName).all()
            .filter { $0.id.map(installed.contains) ?? false }
        guard !vms.isEmpty else { return nil }
        let steps = try vms.map {
            try StepPlan(
                AgentConfigureStep.self, .init(vmID: try $0.requireID()), title: "push the monitor settings to \($0.hostName)",
                vmName: $0.hostName, vmRole: role.name)
        }
        let jobID = try await jobs.submit(
            kind: AgentConfigureStep.name, title: "Push role \(role.name)'s monitor settings to \(vms.count) VMs", by: actor, steps: steps)
        await AuditLog.record(
            .operation, action: "settings.role.monitor.push", result: .success,
            details: "role \(role.name)'s watched services go to \(vms.count) VMs (job \(jobID))", vmRole: role.name, by: actor,
            on: database, logger: logger)
        return jobID
    }
}

/// The `agent.install` steps that follow a VM's creation or adoption in its job (SPEC MON-1),
/// when `FLOTILLA_AGENT_URL` says where agents report; none without it.
struct AgentInstallPlan: Sendable {
    let platformURL: String?
    let programPath: String

    /// No agent: for callers outside a request (the lab's own adoption, tools).
    static let none = AgentInstallPlan(platformURL: nil, programPath: "")

    /// One step per VM in `phase`. New VMs are rebooted after the install (`reboot`), so their
    /// job ends with a heartbeat from the agent the boot hook started.
    func steps(for vms: [VM], reboot: Bool, phase: Int) throws -> [StepPlan] {
        guard let platformURL else { return [] }
        return try vms.map { vm in
            try StepPlan(
                AgentInstallStep.self,
                .init(vmID: try vm.requireID(), platformURL: platformURL, programPath: programPath, reboot: reboot),
                title: "install the monitor agent on \(vm.hostName)", vmName: vm.hostName, vmRole: vm.role.name, phase: phase)
        }
    }
}

extension AgentRollout {
    /// Installs the agent on VMs just adopted: one job, a step per VM; nil when no platform URL
    /// is set or nothing was adopted. Adopted VMs are not rebooted.
    func installAdopted(_ vms: [VM], plan: AgentInstallPlan) async throws -> UUID? {
        let steps = try plan.steps(for: vms, reboot: false, phase: 0)
        guard !steps.isEmpty else { return nil }
        return try await jobs.submit(
            kind: AgentInstallStep.name, title: "Install the monitor agent on \(vms.count) adopted VMs", by: actor, steps: steps)
    }
}

extension Request {
    /// Where the shipped agent program is: `agent/flotilla-agent` beside Resources.
    private var agentProgramPath: String {
        let views = URL(fileURLWithPath: application.directory.viewsDirectory)
        return views.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("agent/flotilla-agent").path
    }

    var agentRollout: AgentRollout {
        AgentRollout(
            database: db, jobs: application.flotilla.jobs, actor: auditActor, logger: logger, programPath: agentProgramPath)
    }

    var agentInstallPlan: AgentInstallPlan {
        AgentInstallPlan(platformURL: application.flotilla.config.agentPlatformURL, programPath: agentProgramPath)
    }
}
