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

extension Request {
    var agentRollout: AgentRollout {
        let views = URL(fileURLWithPath: application.directory.viewsDirectory)
        let root = views.deletingLastPathComponent().deletingLastPathComponent()
        return AgentRollout(
            database: db, jobs: application.flotilla.jobs, actor: auditActor, logger: logger,
            programPath: root.appendingPathComponent("agent/flotilla-agent").path)
    }
}
