import Foundation

/// The step kinds that run `VMOperations` on one VM (SPEC BEY-8), and the plans the services
/// make of them. Parameters name the VM by ID: the rest is read from its record when it runs.
struct VMCreateStep: StepKind {
    struct Parameters: Codable, Sendable {
        var vmID: UUID
    }

    static let name = "vm.create"
    /// Run again after a cut-off, it adopts a VM of the same name already on vSphere instead of
    /// cloning a second one.
    static let rerunRule = RerunRule.rerunAfterCheck

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        try await context.operations.create(parameters.vmID, context: context)
    }
}

struct VMDeleteStep: StepKind {
    struct Parameters: Codable, Sendable {
        var vmID: UUID
    }

    static let name = "vm.delete"
    /// A VM already gone from vSphere, or a record already removed, counts as deleted.
    static let rerunRule = RerunRule.idempotent
    static let attemptsOnFailure = 3

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        try await context.operations.destroy(parameters.vmID, context: context)
    }
}

struct VMPowerStep: StepKind {
    struct Parameters: Codable, Sendable {
        var vmID: UUID
        var action: PowerAction
    }

    static let name = "vm.power"
    /// Power changes look at the current state first.
    static let rerunRule = RerunRule.idempotent
    static let attemptsOnFailure = 3

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        try await context.operations.power(parameters.vmID, parameters.action, context: context)
    }

    func auditAction(_ parameters: Parameters) -> String { "vm.power.\(parameters.action.rawValue)" }
}

struct VMPasswordStep: StepKind {
    struct Parameters: Codable, Sendable {
        var vmID: UUID
        /// The new password, sealed with the installation's `SecretBox`.
        var passwordSealed: String
    }

    static let name = "vm.password"
    /// Setting the same password again does no harm.
    static let rerunRule = RerunRule.idempotent

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        let password = try context.operations.secrets.open(parameters.passwordSealed)
        try await context.operations.changePassword(parameters.vmID, to: password, context: context)
    }
}

struct VMNetworkStep: StepKind {
    /// The new network as validated when the job was submitted; validated again when it runs.
    struct Parameters: Codable, Sendable {
        var vmID: UUID
        var hostName: String
        var ip: String
        var prefixLength: Int
        var gateway: String
        var dns1: String?
        var dns2: String?
    }

    static let name = "vm.network"
    static let rerunRule = RerunRule.needsAttention(
        "the change was cut off: the guest may have kept its old address or moved to the new one; check it, then change the network again")

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        let spec = try VMSpec(
            hostName: parameters.hostName, ip: parameters.ip, netmask: String(parameters.prefixLength), gateway: parameters.gateway,
            dns1: parameters.dns1, dns2: parameters.dns2)
        try await context.operations.changeNetwork(parameters.vmID, to: spec, context: context)
    }
}

extension VMOperations {
    func createStep(_ vm: VM) throws -> StepPlan {
        try StepPlan(
            VMCreateStep.self, .init(vmID: try vm.requireID()), title: "create \(vm.hostName)", vmName: vm.hostName,
            vmRole: vm.role.name, connectionID: vm.role.$connection.id)
    }

    func destroyStep(_ vm: VM) throws -> StepPlan {
        try StepPlan(
            VMDeleteStep.self, .init(vmID: try vm.requireID()), title: "delete \(vm.hostName)", vmName: vm.hostName,
            vmRole: vm.role.name, connectionID: vm.role.$connection.id)
    }

    func powerStep(_ vm: VM, _ action: PowerAction) throws -> StepPlan {
        try StepPlan(
            VMPowerStep.self, .init(vmID: try vm.requireID(), action: action), title: "power \(action.rawValue) \(vm.hostName)",
            vmName: vm.hostName, vmRole: vm.role.name, connectionID: vm.role.$connection.id)
    }

    func passwordStep(_ vm: VM, to password: String) throws -> StepPlan {
        try StepPlan(
            VMPasswordStep.self, .init(vmID: try vm.requireID(), passwordSealed: try secrets.seal(password)),
            title: "change password of \(vm.hostName)", vmName: vm.hostName, vmRole: vm.role.name,
            connectionID: vm.role.$connection.id)
    }

    func networkStep(_ vm: VM, to spec: VMSpec) throws -> StepPlan {
        try StepPlan(
            VMNetworkStep.self,
            .init(
                vmID: try vm.requireID(), hostName: spec.hostName, ip: spec.ip, prefixLength: spec.prefixLength,
                gateway: spec.gateway, dns1: spec.dns1, dns2: spec.dns2),
            title: "change network of \(vm.hostName) to \(spec.ip)/\(spec.prefixLength)", vmName: vm.hostName,
            vmRole: vm.role.name, connectionID: vm.role.$connection.id)
    }
}
