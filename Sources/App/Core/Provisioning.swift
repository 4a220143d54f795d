import Fluent
import Foundation
import Logging
import RemoteShell
import VSphere

/// The work a job step does on one VM: create, destroy and power it, through vSphere and
/// then SSH into the guest (SPEC VM-3..8, ARCH-3).
struct Provisioning: Sendable {
    let database: any Database
    let sessions: VSphereSessions
    let secrets: SecretBox
    let shell: ShellPool
    /// Host keys pinned on first contact (SPEC BEY-5); a new VM's key replaces its address's old one.
    let hostKeys: FileHostKeyStore
    let guestBootTimeout: Duration

    /// extraConfig key carrying the VM's role, so the guest (and a later adoption) knows what it is.
    static let roleKey = "guestinfo.flotilla.role"

    /// What a VM's record says about where it lives.
    struct Placement {
        let vm: VM
        let role: Role
        let connection: VSphereConnection
        let client: VSphereClient
    }

    func placement(of vmID: UUID) async throws -> Placement {
        guard let vm = try await VM.query(on: database).filter(\.$id == vmID).with(\.$role).first() else {
            throw FlotillaError.notFound("the VM record is gone")
        }
        guard let connection = try await VSphereConnection.find(vm.role.$connection.id, on: database) else {
            throw FlotillaError.notFound("the role's vSphere connection is gone")
        }
        return Placement(vm: vm, role: vm.role, connection: connection, client: try await sessions.client(for: connection))
    }

    /// Clone → guest metadata → power on → guest reports its IP → SSH answers with the new
    /// password. A failure destroys the half-made VM, or marks it so it is never unknown.
    func create(_ vmID: UUID, context: StepContext) async throws {
        let placement = try await placement(of: vmID)
        let vm = placement.vm
        var created: VirtualMachine?
        do {
            let password = try secrets.open(vm.passwordSealed)
            let template = try await placement.client.findTemplate(named: placement.role.template)
            await context.log("cloning \(vm.hostName) from template \(placement.role.template)")
            let guest = GuestConfiguration(
                hostName: vm.hostName,
                ipv4: .init(address: vm.ip, prefixLength: vm.prefixLength, gateway: vm.gateway, dns: [vm.dns1, vm.dns2].compactMap { $0 }),
                passwordHash: CryptSHA512.hash(password: password), user: placement.role.sshUser)
            let request = CloneRequest(
                name: vm.hostName, folder: try await folder(placement), pool: try await pool(placement), datastore: try await datastore(placement),
                extraConfig: try guest.extraConfig() + [ExtraConfigEntry(key: Self.roleKey, value: placement.role.name)], powerOn: false)
            let clone = try await placement.client.clone(template, request)
            created = clone
            vm.vsphereReference = clone.reference.value
            try await vm.save(on: database)
            await context.log("cloned as \(clone.reference.value); powering on")
            try await clone.powerOn()
            try await waitForGuest(clone, vm: vm, context: context)
            try await waitForSSH(vm: vm, user: placement.role.sshUser, password: password, context: context)
            try await refresh(vm, from: clone)
            vm.status = .ready
            vm.statusReason = nil
            try await vm.save(on: database)
        } catch {
            let reason = JobEngine.describe(error)
            vm.status = .failed
            if let created {
                do {
                    try? await created.powerOff()
                    try await created.destroy()
                    vm.vsphereReference = nil
                    vm.statusReason = "\(reason) (the half-made VM was destroyed)"
                } catch {
                    vm.statusReason = "\(reason) (the half-made VM \(created.reference.value) could not be destroyed: \(JobEngine.describe(error)))"
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
        if let machine = machine(placement) {
            do {
                if try await machine.powerState() != .poweredOff {
                    await context.log("powering off")
                    try await machine.powerOff()
                }
                await context.log("destroying \(machine.reference.value)")
                try await machine.destroy()
            } catch let fault as Fault where fault.name == "ManagedObjectNotFound" {
                await context.log("already gone from vSphere")
            }
        }
        try? await hostKeys.forget(host: placement.vm.ip)
        try await placement.vm.delete(on: database)
    }

    enum PowerAction: String, Sendable {
        case on, off, restart
    }

    /// SPEC VM-4/VM-8: restart reboots a running VM and powers on a stopped one.
    func power(_ vmID: UUID, _ action: PowerAction, context: StepContext) async throws {
        let placement = try await placement(of: vmID)
        guard let machine = machine(placement) else {
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

    private func machine(_ placement: Placement) -> VirtualMachine? {
        placement.vm.vsphereReference.map { placement.client.virtualMachine(ManagedObjectReference(type: "VirtualMachine", value: $0)) }
    }

    private func waitForGuest(_ machine: VirtualMachine, vm: VM, context: StepContext) async throws {
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

    /// Tools report the address before the guest's SSH server is up (or before its new
    /// password is set): keep trying until the boot deadline, then report the last reason.
    private func waitForSSH(vm: VM, user: String, password: String, context: StepContext) async throws {
        let target = SSHTarget(host: vm.ip, user: user, authentication: .password(password))
        try await hostKeys.forget(host: target.hostKeyName)
        let deadline = ContinuousClock.now + guestBootTimeout
        var lastFailure = "no answer"
        while ContinuousClock.now < deadline {
            do {
                let answer = try await shell.run(Command("hostname"), on: target, timeout: .seconds(20))
                let name = answer.output.trimmingCharacters(in: .whitespacesAndNewlines)
                guard answer.succeeded, name == vm.hostName else {
                    throw FlotillaError(.unavailable, "the guest at \(vm.ip) answered SSH as '\(name.prefix(64))', not \(vm.hostName)")
                }
                await context.log("SSH answers on \(vm.ip) with the new password")
                return
            } catch let error as RemoteShellError where error.kind != .hostKeyMismatch {
                lastFailure = error.description
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        throw FlotillaError(.unavailable, "SSH on \(vm.ip) did not answer with the new password within \(guestBootTimeout): \(lastFailure)")
    }

    private func refresh(_ vm: VM, from machine: VirtualMachine) async throws {
        let summary = try await machine.summary()
        vm.powerState = summary.powerState.rawValue
        vm.guestOS = summary.guestOS
        vm.cpus = summary.cpuCount
        vm.memoryMB = summary.memoryMB
        vm.diskGB = summary.diskGB
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
        return try await placement.client.find(type, named: name).reference
    }
}
