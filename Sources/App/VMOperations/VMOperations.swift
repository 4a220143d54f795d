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
    /// The platform's SSH keys, with which every login to a guest is made (SPEC BEY-9).
    let keys: PlatformKeys
    let guestBootTimeout: Duration
    /// How a network change reaches the guest's new address.
    var guestNetwork: GuestNetwork

    init(
        database: any Database, vsphere: any VSphereProvider, secrets: SecretBox, shell: any GuestShell,
        keys: PlatformKeys, guestBootTimeout: Duration
    ) {
        self.database = database
        self.vsphere = vsphere
        self.secrets = secrets
        self.shell = shell
        self.keys = keys
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

    /// How every step logs in to a guest: the platform key and the VM's pinned host key.
    var login: GuestLogin { GuestLogin(keys: keys) }

    /// Clone → guest metadata (password hash, platform key) → power on → guest reports its IP →
    /// SSH answers to the platform key → its host key is pinned to the VM and the password hash
    /// leaves the metadata. A failure destroys the half-made VM, or marks it so it is never unknown.
    ///
    /// This is the one place where a VM's host key is accepted unseen (first contact with a
    /// guest fresh from its template), and it is logged; every later login expects that key.
    func create(_ vmID: UUID, context: StepContext) async throws {
        let placement = try await placement(of: vmID)
        let vm = placement.vm
        var created: (any VSphereMachine)?
        do {
            let password = try secrets.open(vm.passwordSealed)
            let key = try await keys.active()
            vm.platformKeyID = try key.requireID()
            let clone: any VSphereMachine
            var adopted = false
            if context.isRerun, let earlier = try await existingMachine(named: vm.hostName, on: placement.endpoint) {
                clone = earlier
                adopted = true
                await context.log("an earlier run was cut off: adopting \(earlier.reference), already on vSphere, instead of cloning again")
            } else {
                let (template, request) = try await clonePlan(
                    name: vm.hostName, role: placement.role, connection: placement.connection, endpoint: placement.endpoint,
                    extraConfig: try guestConfiguration(placement, passwordHash: CryptSHA512.hash(password: password), key: key)
                        .extraConfig() + [ExtraConfigEntry(key: Self.roleKey, value: placement.role.name)])
                await context.log("cloning \(vm.hostName) from template \(placement.role.template)")
                clone = try await placement.endpoint.clone(template, request)
            }
            created = clone
            vm.vsphereReference = clone.reference
            try await vm.save(on: database)
            if adopted, try await clone.powerState() == .poweredOn {
                await context.log("\(clone.reference) is already powered on")
            } else {
                await context.log("cloned as \(clone.reference); powering on")
                try await clone.powerOn()
            }
            try await waitForGuest(clone, vm: vm, context: context)
            // A connection kept from a machine that had this address before is not this guest.
            await shell.closeConnections(toHost: vm.ip)
            let target = try login.firstContact(with: vm, user: placement.role.sshUser, key: key)
            let hostKey = try await GuestReadiness(shell: shell).waitForLogin(
                target, hostName: vm.hostName, timeout: guestBootTimeout, context: context)
            vm.hostKey = hostKey.openSSHPublicKey
            try await vm.save(on: database)
            await context.log("pinned the new guest's host key \(hostKey.fingerprint) to \(vm.hostName)")
            try await updateMetadata(placement, key: key)
            await context.log("the guest applied its password; the hash is removed from its metadata")
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
                    vm.statusReason =
                        "\(reason) (the half-made VM \(created.reference) could not be destroyed: \(FlotillaError.describe(error)))"
                }
            } else {
                vm.statusReason = reason
            }
            await context.log(vm.statusReason ?? reason)
            try? await vm.save(on: database)
            throw error
        }
    }

    /// The VM of that name on vSphere, if there is one (a clone an earlier, cut-off run made).
    private func existingMachine(named name: String, on endpoint: any VSphereEndpoint) async throws -> (any VSphereMachine)? {
        do {
            return try await endpoint.findVirtualMachine(named: name)
        } catch VSphereError.notFound {
            return nil
        }
    }

    /// Destroys the VM on vSphere (powering it off first), then removes its record (SPEC VM-7).
    /// Run again after a cut-off, a record already removed means the work was done.
    func destroy(_ vmID: UUID, context: StepContext) async throws {
        if context.isRerun, try await VM.find(vmID, on: database) == nil {
            await context.log("the VM and its record are already gone")
            return
        }
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
        await shell.closeConnections(toHost: placement.vm.ip)
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
        // Where the VM is now, as the action's success says: asking vSphere again cost one
        // more call per step (the inventory feed records whatever changes later).
        placement.vm.powerState = (action == .off ? PowerState.poweredOff : .poweredOn).rawValue
        try await placement.vm.save(on: database)
    }

    /// The first-boot metadata of the VM as its record says it is now: its network, the platform
    /// key for the role's user (with passwordless sudo when that user is not root), and the
    /// password hash only while the guest has yet to apply it.
    func guestConfiguration(_ placement: Placement, passwordHash: String?, key: PlatformSSHKey) -> GuestConfiguration {
        let vm = placement.vm
        let user = placement.role.sshUser
        return GuestConfiguration(
            hostName: vm.hostName,
            ipv4: .init(address: vm.ip, prefixLength: vm.prefixLength, gateway: vm.gateway, dns: [vm.dns1, vm.dns2].compactMap { $0 }),
            passwordHash: passwordHash, user: user, authorizedKeys: [key.publicKey],
            sudo: user == "root" ? nil : GuestConfiguration.passwordlessSudo)
    }

    /// Rewrites the guest metadata from the record, so a rebuilt or re-cloned guest comes up as it
    /// is now. It never carries the password hash: vSphere readers must not collect it.
    func updateMetadata(_ placement: Placement, key: PlatformSSHKey) async throws {
        guard let machine = placement.machine else { return }
        try await machine.reconfigure(extraConfig: try guestConfiguration(placement, passwordHash: nil, key: key).extraConfig())
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

    /// The template and where its clone goes, from the connection's settings. With a datacenter
    /// set, the template and every place are looked up inside it (names repeat across
    /// datacenters); a place left blank is the template's own; a network set moves the clone's
    /// first network card there.
    func clonePlan(
        name: String, role: Role, connection: VSphereConnection, endpoint: any VSphereEndpoint,
        extraConfig: [ExtraConfigEntry]
    ) async throws -> (template: any VSphereMachine, request: CloneRequest) {
        let datacenter = try await find(.datacenter, connection.datacenter, on: endpoint, in: nil)
        let template = try await endpoint.findTemplate(named: role.template, in: datacenter)
        let request = CloneRequest(
            name: name,
            folder: try await find(.folder, connection.vmFolder, on: endpoint, in: datacenter),
            pool: try await find(.resourcePool, connection.resourcePool, on: endpoint, in: datacenter),
            datastore: try await find(.datastore, connection.datastore, on: endpoint, in: datacenter),
            network: try await find(.network, connection.network, on: endpoint, in: datacenter),
            extraConfig: extraConfig, powerOn: false)
        return (template, request)
    }

    /// A connection setting left blank means the template's own place (nil).
    private func find(
        _ type: InventoryType, _ setting: String?, on endpoint: any VSphereEndpoint,
        in container: ManagedObjectReference?
    ) async throws -> ManagedObjectReference? {
        guard let setting else { return nil }
        return try await endpoint.find(type, named: setting, in: container)
    }
}
