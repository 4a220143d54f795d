import VSphere

/// `VSphereEndpoint` over the `VSphere` library's client.
struct LiveVSphereEndpoint: VSphereEndpoint {
    let client: VSphereClient

    var product: VSphereProduct {
        VSphereProduct(
            fullName: client.about.fullName, apiType: client.about.apiType?.rawValue ?? "unknown",
            apiVersion: client.about.apiVersion)
    }

    func datacenterNames() async throws -> [String] {
        try await client.list(.datacenter).map(\.name).sorted()
    }

    func virtualMachines(fields: VMSummary.Fields) async throws -> [VMSummary] {
        try await client.listVirtualMachines(fields: fields)
    }

    func findTemplate(named name: String, in container: ManagedObjectReference?) async throws -> any VSphereMachine {
        LiveVSphereMachine(machine: try await client.findTemplate(named: name, in: container))
    }

    func findVirtualMachine(named name: String) async throws -> any VSphereMachine {
        LiveVSphereMachine(machine: try await client.findVirtualMachine(named: name))
    }

    func find(_ type: InventoryType, named name: String, in container: ManagedObjectReference?) async throws -> ManagedObjectReference {
        try await client.find(type, named: name, in: container).reference
    }

    func clone(_ template: any VSphereMachine, _ request: CloneRequest) async throws -> any VSphereMachine {
        LiveVSphereMachine(machine: try await client.clone(handle(template.reference), request))
    }

    func machine(_ reference: String) -> any VSphereMachine {
        LiveVSphereMachine(machine: handle(reference))
    }

    func close() async {
        try? await client.close()
    }

    private func handle(_ reference: String) -> VirtualMachine {
        client.virtualMachine(ManagedObjectReference(type: "VirtualMachine", value: reference))
    }
}

/// `VSphereMachine` over the library's VM handle.
struct LiveVSphereMachine: VSphereMachine {
    let machine: VirtualMachine

    var reference: String { machine.reference.value }
    func summary() async throws -> VMSummary { try await machine.summary() }
    func powerState() async throws -> PowerState { try await machine.powerState() }
    func powerOn() async throws { try await machine.powerOn() }
    func powerOff() async throws { try await machine.powerOff() }
    func rebootGuest() async throws -> VirtualMachine.GracefulOutcome { try await machine.rebootGuest() }
    func destroy() async throws { try await machine.destroy() }
    func reconfigure(extraConfig: [ExtraConfigEntry]) async throws { try await machine.reconfigure(extraConfig: extraConfig) }
}
