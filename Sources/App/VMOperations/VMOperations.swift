import Fluent
import Foundation
import Logging
import RemoteShell
import VSphere

/// The work a job step does on one VM: create, destroy and power it through vSphere, and change
/// its password and network inside the guest (SPEC VM-3..10, ARCH-3). vSphere is reached
/// through `VSphereProvider`, the guest through `GuestShell`.
struct VMOperations: Sendable {
    let database: any Database
    let vsphere: any VSphereProvider
    let secrets: SecretBox
    let shell: any GuestShell
    /// Host keys pinned on first contact (SPEC BEY-5); a new VM's key replaces its address's old one.
    let hostKeys: any HostKeyStore
    let guestBootTimeout: Duration
    /// How a network change reaches the guest's new address.
    var guestNetwork: GuestNetwork

    init(database: any Database, vsphere: any VSphereProvider, secrets: SecretBox, shell: any GuestShell,
         hostKeys: any HostKeyStore, guestBootTimeout: Duration) {
        self.database = database
        self.vsphere = vsphere
        self.secrets = secrets
        self.shell = shell
        self.hostKeys = hostKeys
        self.guestBootTimeout = guestBootTimeout
        guestNetwork = GuestNetwork(shell: shell)
    }

    /// extraConfig key carrying the VM's role, so the guest (and a later adoption) knows what it is.
    static let roleKey = "guestinfo.flotilla.role"

    /// What a VM's record says about where it lives.
    struct Placement {
        let vm: VM
        let role: Role
        let connection: VSphereConnection
        let endpoint: any VSphereEndpoint

        /// The VM on vSphere, if it was ever created there.
        var machine: (any VSphereMachine)? {
            vm.vsphereReference.map(endpoint.machine)
        }
    }

    func placement(of vmID: UUID) async throws -> Placement {
        guard let vm = try await VM.query(on: database).filter(\.$id == vmID).with(\.$role).first() else {
            throw FlotillaError.notFound("the VM record is gone")
        }
        guard let connection = try await VSphereConnection.find(vm.role.$connection.id, on: database) else {
            throw FlotillaError.notFound("the role's vSphere connection is gone")
        }
        return Placement(vm: vm, role: vm.role, connection: connection, endpoint: try await vsphere.endpoint(for: connection))
    }

    /// Clone → guest metadata → power on → guest reports its IP → SSH answers with the new
    /// password. A failure destroys the half-made VM, or marks it so it is never unknown.
    func create(_ vmID: UUID, context: StepContext) async throws {
        let placement = try await placement(of: vmID)
        let vm = placement.vm
        var created: (any VSphereMachine)?
        do {
            let password = try secrets.open(vm.passwordSealed)
            let template = try await placement.endpoint.findTemplate(named: placement.role.template)
            await context.log("cloning \(vm.hostName) from template \(placement.role.template)")
            let request = CloneRequest(
                name: vm.hostName, folder: try await folder(placement), pool: try await pool(placement), datastore: try await datastore(placement),
                extraConfig: try guestConfiguration(placement, password: password).extraConfig()
                    + [ExtraConfigEntry(key: Self.roleKey, value: placement.role.name)],
                powerOn: false)
            let clone = try await placement.endpoint.clone(template, request)
            created = clone
            vm.vsphereReference = clone.reference
            try await vm.save(on: database)
            await context.log("cloned as \(clone.reference); powering on")
            try await clone.powerOn()
            try await waitForGuest(clone, vm: vm, context: context)
            let target = SSHTarget(host: vm.ip, user: placement.role.sshUser, authentication: .password(password))
            try await hostKeys.forget(host: target.hostKeyName)
            try await GuestReadiness(shell: shell).waitForLogin(target, hostName: vm.hostName, timeout: guestBootTimeout, context: context)
            vm.update(from: try await clone.summary())
            vm.status = .ready
            vm.statusReason = nil
            try await vm.save(on: database)
        } catch {
            let reason = FlotillaError.describe(error)
            vm.status = .failed
            if let created {
                do {
                    try? await created.powerOff()
                    try await created.destroy()
                    vm.vsphereReference = nil
                    vm.statusReason = "\(reason) (the half-made VM was destroyed)"
                } catch {
                    vm.statusReason = "\(reason) (the half-made VM \(created.reference) could not be destroyed: \(FlotillaError.describe(error)))"
                }
            } else {
                vm.statusReason = reason
            }
            await context.log(vm.statusReason ?? reason)
            try? await vm.save(on: database)
            throw error
        }
    }

    /// Destroys the VM on vSphere (powering it off first), then removes its record (SPEC VM-7).
    func destroy(_ vmID: UUID, context: StepContext) async throws {
        let placement = try await placement(of: vmID)
        if let machine = placement.machine {
            do {
                if try await machine.powerState() != .poweredOff {
                    await context.log("powering off")
                    try await machine.powerOff()
                }
                await context.log("destroying \(machine.reference)")
                try await machine.destroy()
            } catch let error where VSphereError.isFault(error, .managedObjectNotFound) {
                await context.log("already gone from vSphere")
            }
        }
        try? await hostKeys.forget(host: placement.vm.ip)
        try await placement.vm.delete(on: database)
    }

    /// SPEC VM-4/VM-8: restart reboots a running VM and powers on a stopped one.
    func power(_ vmID: UUID, _ action: PowerAction, context: StepContext) async throws {
        let placement = try await placement(of: vmID)
        guard let machine = placement.machine else {
            throw FlotillaError.conflict("\(placement.vm.hostName) has no VM on vSphere")
        }
        let state = try await machine.powerState()
        switch (action, state) {
        case (.on, .poweredOn):
            await context.log("already powered on")
        case (.on, _), (.restart, .poweredOff), (.restart, .suspended):
            await context.log("powering on")
            try await machine.powerOn()
        case (.off, .poweredOff):
            await context.log("already powered off")
        case (.off, _):
            await context.log("powering off")
            try await machine.powerOff()
        case (.restart, _):
            let outcome = try await machine.rebootGuest()
            await context.log(outcome == .guest ? "rebooted through the guest" : "reset (the guest could not reboot itself)")
        }
        placement.vm.powerState = try await machine.powerState().rawValue
        try await placement.vm.save(on: database)
    }

    /// The first-boot metadata of the VM as its record says it is now.
    func guestConfiguration(_ placement: Placement, password: String) -> GuestConfiguration {
        let vm = placement.vm
        return GuestConfiguration(
            hostName: vm.hostName,
            ipv4: .init(address: vm.ip, prefixLength: vm.prefixLength, gateway: vm.gateway, dns: [vm.dns1, vm.dns2].compactMap { $0 }),
            passwordHash: CryptSHA512.hash(password: password), user: placement.role.sshUser)
    }

    /// Rewrites the guest metadata from the record, so a rebuilt or re-cloned guest comes up as it is now.
    func updateMetadata(_ placement: Placement, password: String) async throws {
        guard let machine = placement.machine else { return }
        try await machine.reconfigure(extraConfig: try guestConfiguration(placement, password: password).extraConfig())
    }

    private func waitForGuest(_ machine: any VSphereMachine, vm: VM, context: StepContext) async throws {
        let deadline = ContinuousClock.now + guestBootTimeout
        while ContinuousClock.now < deadline {
            let summary = try await machine.summary()
            if summary.guestIPAddress == vm.ip {
                await context.log("guest reports \(vm.ip)")
                return
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        throw FlotillaError(.unavailable, "the guest never came up: no report of \(vm.ip) within \(guestBootTimeout)")
    }

    private func folder(_ placement: Placement) async throws -> ManagedObjectReference? {
        try await find(.folder, placement.connection.vmFolder, in: placement)
    }

    private func pool(_ placement: Placement) async throws -> ManagedObjectReference? {
        try await find(.resourcePool, placement.connection.resourcePool, in: placement)
    }

    private func datastore(_ placement: Placement) async throws -> ManagedObjectReference? {
        try await find(.datastore, placement.connection.datastore, in: placement)
    }

    /// A connection setting left blank means the template's own place.
    private func find(_ type: InventoryType, _ name: String?, in placement: Placement) async throws -> ManagedObjectReference? {
        guard let name else { return nil }
        return try await placement.endpoint.find(type, named: name)
    }
}
