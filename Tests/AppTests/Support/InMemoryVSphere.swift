import Foundation
import VSphere

@testable import App

/// A `VSphereProvider` over one pretend inventory kept in memory, for rule tests without vcsim.
/// Clones take the template's facts and the guest metadata they are given; a powered-on clone
/// reports the address of its metadata, as a guest with VMware Tools would. A VM that is gone
/// answers every call with the `ManagedObjectNotFound` fault, as vSphere does.
actor InMemoryVSphere: VSphereProvider {
    struct Machine: Sendable {
        var name: String
        var isTemplate: Bool
        var powerState: PowerState = .poweredOff
        var extraConfig: [String: String] = [:]
        var guestIPAddress: String?
        var cpuCount = 1
    }

    private(set) var machines: [String: Machine] = [:]
    private var nextID = 100
    /// Calls made, as "operation reference" lines (e.g. `destroy vm-101`).
    private(set) var calls: [String] = []
    var datacenters = ["DC0"]
    /// How long reaching the endpoint takes (a slow or unreachable vCenter).
    private(set) var endpointDelay: Duration = .zero

    func setEndpointDelay(_ delay: Duration) {
        endpointDelay = delay
    }

    init(templates: [String] = ["tpl-web", "tpl-redis"]) {
        for name in templates {
            machines["vm-\(nextID)"] = Machine(name: name, isTemplate: true)
            nextID += 1
        }
    }

    /// Adds a VM that exists outside Flotilla (for adoption and power tests).
    @discardableResult
    func addMachine(
        _ name: String, powerState: PowerState = .poweredOn, guestIPAddress: String? = nil,
        extraConfig: [String: String] = [:]
    ) -> String {
        let reference = "vm-\(nextID)"
        nextID += 1
        machines[reference] = Machine(
            name: name, isTemplate: false, powerState: powerState, extraConfig: extraConfig,
            guestIPAddress: guestIPAddress)
        return reference
    }

    /// Changes a VM behind Flotilla's back (drift).
    func change(_ reference: String, _ edit: @Sendable (inout Machine) -> Void) {
        machines[reference].map { machine in
            var machine = machine
            edit(&machine)
            machines[reference] = machine
        }
    }

    /// Removes a VM behind Flotilla's back.
    func remove(_ reference: String) {
        machines[reference] = nil
    }

    func reference(named name: String) -> String? {
        machines.first { $0.value.name == name }?.key
    }

    nonisolated func endpoint(for connection: VSphereConnection) async throws -> any VSphereEndpoint {
        let delay = await endpointDelay
        if delay > .zero { try await Task.sleep(for: delay) }
        return InMemoryEndpoint(world: self)
    }

    nonisolated func connect(_ login: VSphereLogin) async throws -> any VSphereEndpoint {
        guard login.password != "wrong" else {
            throw VSphereError.fault(
                Fault(name: .invalidLogin, message: "Cannot complete login due to an incorrect user name or password."))
        }
        return InMemoryEndpoint(world: self)
    }

    func forget(_ connectionID: UUID) async {}
    func closeAll() async {}

    // MARK: what the endpoint and machines call

    func summaries() -> [VMSummary] {
        machines.map { summary($0.key, $0.value) }.sorted { $0.name < $1.name }
    }

    func find(named name: String, template: Bool) throws -> String {
        guard let (reference, machine) = machines.first(where: { $0.value.name == name }), !template || machine.isTemplate else {
            throw VSphereError.notFound("\(template ? "template" : "VirtualMachine") named \(name)")
        }
        return reference
    }

    func clone(_ template: String, _ request: CloneRequest) throws -> String {
        guard machines[template]?.isTemplate == true else { throw Self.gone(template) }
        guard !machines.values.contains(where: { $0.name == request.name }) else {
            throw VSphereError.fault(Fault(name: .duplicateName, message: "The name '\(request.name)' already exists."))
        }
        let reference = "vm-\(nextID)"
        nextID += 1
        machines[reference] = Machine(
            name: request.name, isTemplate: false,
            extraConfig: Dictionary(request.extraConfig.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }))
        calls.append("clone \(reference)")
        return reference
    }

    func machine(_ reference: String) throws -> Machine {
        guard let machine = machines[reference] else { throw Self.gone(reference) }
        return machine
    }

    func summary(of reference: String) throws -> VMSummary {
        summary(reference, try machine(reference))
    }

    func setPower(_ reference: String, _ state: PowerState) throws {
        var machine = try machine(reference)
        calls.append("power \(state.rawValue) \(reference)")
        machine.powerState = state
        // A running guest reports the address of its metadata.
        let address = (try? GuestConfiguration(guestInfo: machine.extraConfig))?.ipv4?.address
        machine.guestIPAddress = state == .poweredOn ? address ?? machine.guestIPAddress : nil
        machines[reference] = machine
    }

    func destroy(_ reference: String) throws {
        let machine = try machine(reference)
        guard machine.powerState == .poweredOff else {
            throw VSphereError.fault(
                Fault(name: .invalidPowerState, message: "The attempted operation cannot be performed in the current state (Powered on)."))
        }
        calls.append("destroy \(reference)")
        machines[reference] = nil
    }

    func reconfigure(_ reference: String, _ entries: [ExtraConfigEntry]) throws {
        var machine = try machine(reference)
        for entry in entries { machine.extraConfig[entry.key] = entry.value }
        machines[reference] = machine
        calls.append("reconfigure \(reference)")
    }

    private func summary(_ reference: String, _ machine: Machine) -> VMSummary {
        VMSummary(
            reference: ManagedObjectReference(type: "VirtualMachine", value: reference), name: machine.name,
            powerState: machine.powerState, isTemplate: machine.isTemplate, guestIPAddress: machine.guestIPAddress,
            guestOS: "Debian GNU/Linux 12 (64-bit)", cpuCount: machine.cpuCount, memoryMB: 512, diskGB: 1,
            guestInfo: machine.extraConfig.filter { $0.key.hasPrefix("guestinfo.") })
    }

    private static func gone(_ reference: String) -> VSphereError {
        VSphereError.fault(
            Fault(
                name: .managedObjectNotFound,
                message: "The object 'vim.VirtualMachine:\(reference)' has already been deleted or has not been completely created"))
    }
}

struct InMemoryEndpoint: VSphereEndpoint {
    let world: InMemoryVSphere

    var product: VSphereProduct { VSphereProduct(fullName: "In-memory vSphere", apiType: "VirtualCenter", apiVersion: "8.0") }
    func datacenterNames() async throws -> [String] { await world.datacenters }
    func virtualMachines(fields: VMSummary.Fields) async throws -> [VMSummary] { await world.summaries() }
    func findTemplate(named name: String, in container: ManagedObjectReference?) async throws -> any VSphereMachine {
        InMemoryMachine(world: world, reference: try await world.find(named: name, template: true))
    }
    func findVirtualMachine(named name: String) async throws -> any VSphereMachine {
        InMemoryMachine(world: world, reference: try await world.find(named: name, template: false))
    }
    func find(_ type: InventoryType, named name: String, in container: ManagedObjectReference?) async throws -> ManagedObjectReference {
        ManagedObjectReference(type: type.rawValue, value: name)
    }
    func clone(_ template: any VSphereMachine, _ request: CloneRequest) async throws -> any VSphereMachine {
        InMemoryMachine(world: world, reference: try await world.clone(template.reference, request))
    }
    func machine(_ reference: String) -> any VSphereMachine { InMemoryMachine(world: world, reference: reference) }
    func close() async {}
}

struct InMemoryMachine: VSphereMachine {
    let world: InMemoryVSphere
    let reference: String

    func summary() async throws -> VMSummary { try await world.summary(of: reference) }
    func powerState() async throws -> PowerState { try await world.machine(reference).powerState }
    func powerOn() async throws { try await world.setPower(reference, .poweredOn) }
    func powerOff() async throws { try await world.setPower(reference, .poweredOff) }
    func rebootGuest() async throws -> VirtualMachine.GracefulOutcome {
        try await world.setPower(reference, .poweredOn)
        return .guest
    }
    func destroy() async throws { try await world.destroy(reference) }
    func reconfigure(extraConfig: [ExtraConfigEntry]) async throws { try await world.reconfigure(reference, extraConfig) }
}
