import Foundation
import VSphere

/// The App's one way to vSphere: a logged-in endpoint per saved connection, or a fresh one for
/// a connection test. `VSphereSessions` (the `VSphere` library) is the implementation; tests
/// pass an in-memory one to `configure(_:config:outside:)`.
protocol VSphereProvider: Sendable {
    /// The shared, reused endpoint of a saved connection.
    func endpoint(for connection: VSphereConnection) async throws -> any VSphereEndpoint
    /// A new login with settings not saved yet; the caller closes it.
    func connect(_ login: VSphereLogin) async throws -> any VSphereEndpoint
    /// Drops a cached endpoint, e.g. after the connection was edited or deleted.
    func forget(_ connectionID: UUID) async
    func closeAll() async
}

/// Where and as whom to log in.
struct VSphereLogin: Sendable {
    var url: String
    var username: String
    var password: String
    var thumbprint: String?
}

/// What an endpoint says it is (SPEC: a connection test shows `about`).
struct VSphereProduct: Sendable, Equatable {
    var fullName: String
    var apiType: String
    var apiVersion: String
}

/// One logged-in vCenter or ESXi: the handful of calls the App makes.
protocol VSphereEndpoint: Sendable {
    var product: VSphereProduct { get }
    func datacenterNames() async throws -> [String]
    func virtualMachines(fields: VMSummary.Fields) async throws -> [VMSummary]
    /// A template by name, anywhere or inside `container` (a datacenter); `VSphereError.notFound` when there is none.
    func findTemplate(named name: String, in container: ManagedObjectReference?) async throws -> any VSphereMachine
    /// A VM or template by name; `VSphereError.notFound` when there is none.
    func findVirtualMachine(named name: String) async throws -> any VSphereMachine
    /// A folder, pool, datastore… by inventory path, or by name anywhere or inside `container` (a datacenter).
    func find(_ type: InventoryType, named name: String, in container: ManagedObjectReference?) async throws -> ManagedObjectReference
    func clone(_ template: any VSphereMachine, _ request: CloneRequest) async throws -> any VSphereMachine
    /// The VM with that managed object ID (it may be gone: calls then fail with `ManagedObjectNotFound`).
    func machine(_ reference: String) -> any VSphereMachine
    /// Logs out and releases the connections (only for endpoints from `connect`).
    func close() async
}

/// One VM (or template) on an endpoint.
protocol VSphereMachine: Sendable {
    /// The managed object ID, e.g. `vm-42`.
    var reference: String { get }
    func summary() async throws -> VMSummary
    func powerState() async throws -> PowerState
    func powerOn() async throws
    func powerOff() async throws
    /// Reboots through the guest, or resets when the guest cannot.
    func rebootGuest() async throws -> VirtualMachine.GracefulOutcome
    func destroy() async throws
    func reconfigure(extraConfig: [ExtraConfigEntry]) async throws
}

extension VSphereEndpoint {
    func virtualMachines() async throws -> [VMSummary] {
        try await virtualMachines(fields: .all)
    }

    func templateNames() async throws -> [String] {
        try await virtualMachines(fields: []).filter(\.isTemplate).map(\.name).sorted()
    }
}
