import Fluent
import Vapor

/// VMs (SPEC VM-5..10): validated and recorded here; creating, deleting, powering and changing
/// them inside the guest is a job whose steps `VMOperations` runs.
struct VMs {
    let database: any Database
    let secrets: SecretBox
    let jobs: JobEngine
    let operations: VMOperations
    let actor: AuditLog.Actor
    let logger: Logger
    /// The monitor agent's install after creation (SPEC MON-1), when a platform URL is set.
    var agentInstall = AgentInstallPlan.none

    struct Input: Content {
        var hostName: String
        var ip: String
        var netmask: String
        var gateway: String
        var dns1: String?
        var dns2: String?
        var role: String
        var password: String
        var passwordConfirmation: String
        var notes: String?
    }

    struct PasswordInput: Content {
        var password: String
        var passwordConfirmation: String
    }

    struct NetworkInput: Content {
        var ip: String
        var netmask: String
        var gateway: String
        var dns1: String?
        var dns2: String?
    }

    static func validateGuestPassword(_ password: String, confirmation: String) throws {
        guard password == confirmation else { throw FlotillaError.validation("password and confirmation do not match") }
        guard password.count >= 8, password.count <= 128 else { throw FlotillaError.validation("VM password has 8 to 128 characters") }
        guard !password.contains(where: { $0.isNewline || $0 == "\0" }) else {
            throw FlotillaError.validation("VM password may not contain line breaks")
        }
    }

    /// Validates and records a new VM, then starts the job that creates it (SPEC VM-6).
    func add(_ input: Input, to environmentID: UUID) async throws -> (VM, jobID: UUID) {
        guard let environment = try await Environment.find(environmentID, on: database) else {
            throw FlotillaError.notFound("no such environment")
        }
        let spec = try VMSpec(
            hostName: input.hostName, ip: input.ip, netmask: input.netmask, gateway: input.gateway,
            dns1: input.dns1, dns2: input.dns2)
        try Self.validateGuestPassword(input.password, confirmation: input.passwordConfirmation)
        guard let role = try await Role.query(on: database).filter(\.$name == input.role).first() else {
            throw FlotillaError.validation("'\(input.role.prefix(64))' is not a known role")
        }
        if try await VM.query(on: database).filter(\.$ip == spec.ip).count() > 0 {
            throw FlotillaError.conflict("\(spec.ip) is already used by another VM")
        }
        if try await VM.query(on: database).filter(\.$hostName == spec.hostName).count() > 0 {
            throw FlotillaError.conflict("a VM named \(spec.hostName) already exists")
        }
        let vm = try VM(
            environmentID: try environment.requireID(), role: role, spec: spec,
            passwordSealed: try secrets.seal(input.password), status: .provisioning,
            notes: String((input.notes ?? "").prefix(2000)))
        do {
            try await vm.create(on: database)
        } catch let error as any DatabaseError where error.isConstraintFailure {
            throw FlotillaError.conflict("the IP address or host name is already used by another VM")
        }
        let jobID = try await jobs.submit(
            kind: "vm.create", title: "Create \(vm.hostName) in \(environment.name)",
            by: actor, steps: [try operations.createStep(vm)] + agentInstall.steps(for: [vm], reboot: true, phase: 1))
        return (vm, jobID)
    }

    func find(_ id: UUID) async throws -> VM {
        guard let vm = try await VM.query(on: database).filter(\.$id == id).with(\.$role).with(\.$environment).first() else {
            throw FlotillaError.notFound("no such VM")
        }
        return vm
    }

    func delete(_ id: UUID) async throws -> UUID {
        let vm = try await find(id)
        return try await jobs.submit(kind: "vm.delete", title: "Delete \(vm.hostName)", by: actor, steps: [try operations.destroyStep(vm)])
    }

    func power(_ id: UUID, action: PowerAction) async throws -> UUID {
        let vm = try await find(id)
        guard vm.vsphereReference != nil else { throw FlotillaError.conflict("\(vm.hostName) has no VM on vSphere") }
        return try await jobs.submit(
            kind: "vm.power", title: "Power \(action.rawValue) \(vm.hostName)", by: actor,
            steps: [try operations.powerStep(vm, action)])
    }

    /// SPEC VM-12: power a selection of VMs, from any environments, in one job (a step per VM).
    func power(_ ids: [UUID], action: PowerAction) async throws -> UUID {
        let unique = Array(Set(ids))
        guard !unique.isEmpty, unique.count <= 1000 else { throw FlotillaError.validation("select 1 to 1000 VMs") }
        let vms = try await VM.query(on: database).filter(\.$id ~~ unique).with(\.$role).sort(\.$hostName).all()
        guard vms.count == unique.count else { throw FlotillaError.notFound("no such VM") }
        if let bare = vms.first(where: { $0.vsphereReference == nil }) {
            throw FlotillaError.conflict("\(bare.hostName) has no VM on vSphere")
        }
        let names = vms.prefix(5).map(\.hostName).joined(separator: ", ") + (vms.count > 5 ? " and \(vms.count - 5) more" : "")
        return try await jobs.submit(
            kind: "vm.power", title: "Power \(action.rawValue) \(names)", by: actor,
            steps: try vms.map { try operations.powerStep($0, action) })
    }

    func changePassword(_ id: UUID, _ input: PasswordInput) async throws -> UUID {
        let vm = try await find(id)
        try Self.validateGuestPassword(input.password, confirmation: input.passwordConfirmation)
        guard vm.status == .ready else { throw FlotillaError.conflict("\(vm.hostName) is \(vm.status.rawValue), not ready") }
        return try await jobs.submit(
            kind: "vm.password", title: "Change the password of \(vm.hostName)", by: actor,
            steps: [try operations.passwordStep(vm, to: input.password)])
    }

    func changeNetwork(_ id: UUID, _ input: NetworkInput) async throws -> UUID {
        let vm = try await find(id)
        let spec = try VMSpec(
            hostName: vm.hostName, ip: input.ip, netmask: input.netmask, gateway: input.gateway,
            dns1: input.dns1, dns2: input.dns2)
        guard vm.status == .ready else { throw FlotillaError.conflict("\(vm.hostName) is \(vm.status.rawValue), not ready") }
        if spec.ip != vm.ip, try await VM.query(on: database).filter(\.$ip == spec.ip).count() > 0 {
            throw FlotillaError.conflict("\(spec.ip) is already used by another VM")
        }
        return try await jobs.submit(
            kind: "vm.network", title: "Change the network of \(vm.hostName) to \(spec.ip)", by: actor,
            steps: [try operations.networkStep(vm, to: spec)])
    }
}

extension Request {
    var vms: VMs {
        let flotilla = application.flotilla
        return VMs(
            database: db, secrets: flotilla.secrets, jobs: flotilla.jobs, operations: flotilla.vmOperations,
            actor: auditActor, logger: logger, agentInstall: agentInstallPlan)
    }
}
