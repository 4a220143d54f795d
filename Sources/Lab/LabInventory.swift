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

/// What the supervisor reads from and reports to the hypervisor (vcsim through the VSphere library).
public protocol LabInventory: Sendable {
    /// Every VM that is not a template.
    func virtualMachines() async throws -> [LabVirtualMachine]
    /// Reports the guest's address and host name the way VMware Tools would.
    func reportGuest(key: String, ipAddress: String, hostName: String) async throws
    /// Releases the connection; the inventory is unusable afterwards.
    func close() async
}

/// An inventory that can also make VMs, for `--vms N`.
public protocol LabVMCreator: Sendable {
    /// Clones `count` powered-on VMs from `tpl-<role>`, spread over `roles`, each with
    /// metadata giving it a free address in `network`.
    func createGuests(count: Int, roles: [String], network: IPv4Network) async throws
}
