import Foundation

/// The job steps that run `VMOperations` on one VM, as the services plan them.
extension VMOperations {
    func createStep(_ vm: VM) throws -> StepPlan {
        let id = try vm.requireID()
        return StepPlan(
            action: "vm.create", title: "create \(vm.hostName)", vmName: vm.hostName, vmRole: vm.role.name,
            connectionID: vm.role.$connection.id
        ) { context in
            try await create(id, context: context)
        }
    }

    func destroyStep(_ vm: VM) throws -> StepPlan {
        let id = try vm.requireID()
        return StepPlan(
            action: "vm.delete", title: "delete \(vm.hostName)", vmName: vm.hostName, vmRole: vm.role.name,
            connectionID: vm.role.$connection.id, retryable: true
        ) { context in
            try await destroy(id, context: context)
        }
    }

    func powerStep(_ vm: VM, _ action: PowerAction) throws -> StepPlan {
        let id = try vm.requireID()
        return StepPlan(
            action: "vm.power.\(action.rawValue)", title: "power \(action.rawValue) \(vm.hostName)", vmName: vm.hostName,
            vmRole: vm.role.name, connectionID: vm.role.$connection.id, retryable: true
        ) { context in
            try await power(id, action, context: context)
        }
    }

    func passwordStep(_ vm: VM, to password: String) throws -> StepPlan {
        let id = try vm.requireID()
        return StepPlan(
            action: "vm.password", title: "change password of \(vm.hostName)", vmName: vm.hostName, vmRole: vm.role.name,
            connectionID: vm.role.$connection.id
        ) { context in
            try await changePassword(id, to: password, context: context)
        }
    }

    func networkStep(_ vm: VM, to spec: VMSpec) throws -> StepPlan {
        let id = try vm.requireID()
        return StepPlan(
            action: "vm.network", title: "change network of \(vm.hostName) to \(spec.ip)/\(spec.prefixLength)",
            vmName: vm.hostName, vmRole: vm.role.name, connectionID: vm.role.$connection.id
        ) { context in
            try await changeNetwork(id, to: spec, context: context)
        }
    }
}
