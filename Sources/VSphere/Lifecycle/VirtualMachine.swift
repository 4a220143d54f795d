/// A thin handle on one VM (or template). Every method is one vSphere call or task.
public struct VirtualMachine: Sendable, Hashable {
    public let reference: ManagedObjectReference
    let client: VSphereClient

    public init(client: VSphereClient, reference: ManagedObjectReference) {
        self.client = client
        self.reference = reference
    }

    public static func == (lhs: VirtualMachine, rhs: VirtualMachine) -> Bool { lhs.reference == rhs.reference }
    public func hash(into hasher: inout Hasher) { hasher.combine(reference) }

    public func summary() async throws -> VMSummary {
        try await client.summary(of: reference)
    }

    public func powerState() async throws -> PowerState {
        guard let state = try await client.property("runtime.powerState", of: reference).flatMap({ PowerState(rawValue: $0.text) }) else {
            throw VSphereError.invalidResponse("no power state for \(reference.value)")
        }
        return state
    }

    /// Throws `InvalidPowerState` (as vSphere does) when already on.
    public func powerOn(timeout: Duration = .seconds(600)) async throws {
        try await client.runTask(SOAPOperation("PowerOnVM_Task", on: reference), timeout: timeout)
    }

    /// Hard power off. Throws `InvalidPowerState` when already off.
    public func powerOff(timeout: Duration = .seconds(600)) async throws {
        try await client.runTask(SOAPOperation("PowerOffVM_Task", on: reference), timeout: timeout)
    }

    /// Hard reset.
    public func reset(timeout: Duration = .seconds(600)) async throws {
        try await client.runTask(SOAPOperation("ResetVM_Task", on: reference), timeout: timeout)
    }

    public func suspend(timeout: Duration = .seconds(600)) async throws {
        try await client.runTask(SOAPOperation("SuspendVM_Task", on: reference), timeout: timeout)
    }

    /// How a graceful operation ended.
    public enum GracefulOutcome: Sendable, Equatable {
        /// The guest did it through VMware Tools.
        case guest
        /// Tools were not running, refused, or the guest did not finish in time: the hard operation was used.
        case hardFallback(reason: String)
    }

    /// Asks the guest OS to shut down (VMware Tools) and waits for power-off; falls back to a
    /// hard power-off when tools are not running, the call is refused, or `guestTimeout` passes.
    @discardableResult
    public func shutdownGuest(guestTimeout: Duration = .seconds(120)) async throws -> GracefulOutcome {
        guard try await toolsRunning() else {
            try await powerOff()
            return .hardFallback(reason: "VMware Tools not running")
        }
        do {
            _ = try await client.connection.invoke(SOAPOperation("ShutdownGuest", on: reference))
        } catch VSphereError.fault(let fault) where fault.name != .invalidPowerState {
            try await powerOff()
            return .hardFallback(reason: fault.description)
        }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: guestTimeout)
        while clock.now < deadline {
            if try await powerState() == .poweredOff { return .guest }
            try await Task.sleep(for: .milliseconds(200))
        }
        try await powerOff()
        return .hardFallback(reason: "guest did not power off within \(guestTimeout)")
    }

    /// Asks the guest OS to reboot (VMware Tools); falls back to a hard reset when tools are
    /// not running or the call is refused (vcsim has no RebootGuest: `MethodNotFound`).
    @discardableResult
    public func rebootGuest() async throws -> GracefulOutcome {
        guard try await toolsRunning() else {
            try await reset()
            return .hardFallback(reason: "VMware Tools not running")
        }
        do {
            _ = try await client.connection.invoke(SOAPOperation("RebootGuest", on: reference))
            return .guest
        } catch VSphereError.fault(let fault) where fault.name != .invalidPowerState {
            try await reset()
            return .hardFallback(reason: fault.description)
        }
    }

    func toolsRunning() async throws -> Bool {
        try await client.property("guest.toolsRunningStatus", of: reference)?.text == "guestToolsRunning"
    }

    /// Deletes the VM and its files. Throws `InvalidPowerState` while it is on.
    public func destroy(timeout: Duration = .seconds(600)) async throws {
        try await client.runTask(SOAPOperation("Destroy_Task", on: reference), timeout: timeout)
    }

    /// Sets extraConfig keys (an empty value removes a key on real vSphere).
    public func reconfigure(extraConfig: [ExtraConfigEntry], timeout: Duration = .seconds(600)) async throws {
        let spec = DataObject(nil, [("extraConfig", extraConfig.map(\.optionValue))])
        try await client.runTask(SOAPOperation("ReconfigVM_Task", on: reference, [("spec", spec)]), timeout: timeout)
    }

    /// All extraConfig pairs in server order (keys can repeat on vcsim: the last one counts).
    public func extraConfig() async throws -> [ExtraConfigEntry] {
        guard let array = try await client.property("config.extraConfig", of: reference) else { return [] }
        return OptionValues.pairs(in: array).map { ExtraConfigEntry(key: $0.key, value: $0.value) }
    }

    public func markAsTemplate() async throws {
        _ = try await client.connection.invoke(SOAPOperation("MarkAsTemplate", on: reference))
    }

    /// Turns a template back into a VM, which needs a resource pool (and on vCenter optionally a host).
    public func markAsVirtualMachine(pool: ManagedObjectReference, host: ManagedObjectReference? = nil) async throws {
        _ = try await client.connection.invoke(SOAPOperation("MarkAsVirtualMachine", on: reference, [("pool", pool), ("host", host)]))
    }
}

/// One extraConfig option (`OptionValue` with a string value).
public struct ExtraConfigEntry: Sendable, Hashable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }

    var optionValue: DataObject {
        DataObject("OptionValue", [("key", key), ("value", AnyTypeValue.string(value))])
    }
}

extension VSphereClient {
    public func virtualMachine(_ reference: ManagedObjectReference) -> VirtualMachine {
        VirtualMachine(client: self, reference: reference)
    }
}
