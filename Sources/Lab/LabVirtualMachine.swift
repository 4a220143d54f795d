/// A VM's power state as the lab follows it.
public enum LabPowerState: String, Sendable {
    case poweredOn, poweredOff, suspended
}

/// One VM of the hypervisor, as the supervisor needs to see it.
public struct LabVirtualMachine: Sendable {
    /// Managed object id, e.g. `vm-42`.
    public var key: String
    public var name: String
    public var powerState: LabPowerState
    /// Changes on every power-on, including a reset: how the supervisor notices a reset.
    public var bootTime: String?
    /// The guest the VM's metadata describes; nil when the metadata carries no network
    /// configuration (such a VM has no lab guest), a failure when it is invalid for the lab.
    public var guest: Result<GuestSpec, LabError>?

    public init(key: String, name: String, powerState: LabPowerState, bootTime: String?, guest: Result<GuestSpec, LabError>?) {
        self.key = key
        self.name = name
        self.powerState = powerState
        self.bootTime = bootTime
        self.guest = guest
    }
}
