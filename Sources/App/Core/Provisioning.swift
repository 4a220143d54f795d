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
            vm.update(from: try await clone.summary())
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

    /// SPEC VM-9: sets the password inside the guest, proves it by logging in with it, then
    /// stores it and updates the VM's metadata so a rebuild keeps it.
    func changePassword(_ vmID: UUID, to newPassword: String, context: StepContext) async throws {
        let placement = try await placement(of: vmID)
        let vm = placement.vm
        let user = placement.role.sshUser
        let current = SSHTarget(host: vm.ip, user: user, authentication: .password(try secrets.open(vm.passwordSealed)))
        await context.log("setting the password of \(user) on \(vm.hostName)")
        let result = try await shell.run(Command("chpasswd"), on: current, standardInput: Array("\(user):\(newPassword)\n".utf8),
                                         timeout: .seconds(30))
        guard result.succeeded else {
            throw FlotillaError(.unavailable, "chpasswd failed on \(vm.hostName): \(result.errorOutput.prefix(200))")
        }
        await shell.closeConnections(toHost: vm.ip)
        let proof = try await shell.run(Command("true"), on: SSHTarget(host: vm.ip, user: user, authentication: .password(newPassword)),
                                        timeout: .seconds(20))
        guard proof.succeeded else { throw FlotillaError(.unavailable, "the new password does not log in on \(vm.hostName)") }
        await context.log("the new password logs in")
        vm.passwordSealed = try secrets.seal(newPassword)
        try await vm.save(on: database)
        try await updateMetadata(placement, password: newPassword)
    }

    /// SPEC VM-10: applies a new address inside the guest through ifupdown, with a guard on the
    /// guest that restores the old configuration unless Flotilla reaches the new address in
    /// time; then updates the record and the VM's metadata.
    func changeNetwork(_ vmID: UUID, to spec: VMSpec, context: StepContext) async throws {
        let placement = try await placement(of: vmID)
        let vm = placement.vm
        let password = try secrets.open(vm.passwordSealed)
        let user = placement.role.sshUser
        let old = SSHTarget(host: vm.ip, user: user, authentication: .password(password))
        let interfaces = """
        auto lo
        iface lo inet loopback

        auto eth0
        iface eth0 inet static
            address \(spec.ip)/\(spec.prefixLength)
            gateway \(spec.gateway)
        \([spec.dns1, spec.dns2].compactMap { $0 }.isEmpty ? "" : "    dns-nameservers " + [spec.dns1, spec.dns2].compactMap { $0 }.joined(separator: " "))

        """
        try await shell.upload(Array(interfaces.utf8), to: "/etc/network/interfaces.flotilla-new", on: old, mode: 0o644)
        let resolv = [spec.dns1, spec.dns2].compactMap { $0 }.map { "nameserver \($0)" }.joined(separator: "\n")
        await context.log("applying \(spec.ip)/\(spec.prefixLength) via \(spec.gateway) inside \(vm.hostName)")
        // Detached so it survives the SSH session it cuts; reverts unless confirmed within 40 s.
        let apply = try await shell.run(Command.script("""
            cp /etc/network/interfaces /etc/network/interfaces.flotilla-old
            rm -f /run/flotilla-network-confirmed
            nohup sh -c '
              sleep 1
              ifdown eth0
              mv /etc/network/interfaces.flotilla-new /etc/network/interfaces
              [ -n "$1" ] && printf "%s\n" "$1" > /etc/resolv.conf
              ifup eth0
              sleep 40
              if [ ! -e /run/flotilla-network-confirmed ]; then
                ifdown eth0
                cp /etc/network/interfaces.flotilla-old /etc/network/interfaces
                ifup eth0
              fi
            ' sh "$1" >/dev/null 2>&1 &
            """, arguments: [resolv]), on: old, timeout: .seconds(20))
        guard apply.succeeded else { throw FlotillaError(.unavailable, "could not start the change: \(apply.errorOutput.prefix(200))") }
        await shell.closeConnections(toHost: vm.ip)
        let new = SSHTarget(host: spec.ip, user: user, authentication: .password(password))
        try await hostKeys.forget(host: new.hostKeyName)
        let deadline = ContinuousClock.now + .seconds(30)
        var reached = false
        while !reached, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(700))
            if let confirm = try? await shell.run(Command("touch", "/run/flotilla-network-confirmed"), on: new, timeout: .seconds(5)),
               confirm.succeeded {
                reached = true
            }
        }
        guard reached else {
            throw FlotillaError(.unavailable, "\(vm.hostName) did not answer on \(spec.ip); the guest restores its old address by itself within a minute")
        }
        await context.log("\(vm.hostName) answers on \(spec.ip); change confirmed")
        try? await hostKeys.forget(host: vm.ip)
        vm.ip = spec.ip
        vm.prefixLength = spec.prefixLength
        vm.gateway = spec.gateway
        vm.dns1 = spec.dns1
        vm.dns2 = spec.dns2
        try await vm.save(on: database)
        try await updateMetadata(placement, password: password)
    }

    /// Rewrites the guest metadata from the record, so a rebuilt or re-cloned guest comes up as it is now.
    private func updateMetadata(_ placement: Placement, password: String) async throws {
        guard let machine = machine(placement) else { return }
        let vm = placement.vm
        let guest = GuestConfiguration(
            hostName: vm.hostName,
            ipv4: .init(address: vm.ip, prefixLength: vm.prefixLength, gateway: vm.gateway, dns: [vm.dns1, vm.dns2].compactMap { $0 }),
            passwordHash: CryptSHA512.hash(password: password), user: placement.role.sshUser)
        try await machine.reconfigure(extraConfig: try guest.extraConfig())
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
