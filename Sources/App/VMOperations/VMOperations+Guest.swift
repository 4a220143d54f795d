import Fluent
import Foundation
import RemoteShell

extension VMOperations {
    /// SPEC VM-9: sets the password inside the guest, proves it by logging in with it, then
    /// stores it and updates the VM's metadata so a rebuild keeps it.
    func changePassword(_ vmID: UUID, to newPassword: String, context: StepContext) async throws {
        let placement = try await placement(of: vmID)
        let vm = placement.vm
        let user = placement.role.sshUser
        let current = SSHTarget(host: vm.ip, user: user, authentication: .password(try secrets.open(vm.passwordSealed)))
        try await GuestPassword(shell: shell).change(user: user, to: newPassword, on: current, hostName: vm.hostName, context: context)
        vm.passwordSealed = try secrets.seal(newPassword)
        try await vm.save(on: database)
        try await updateMetadata(placement, password: newPassword)
    }

    /// SPEC VM-10: applies a new address inside the guest (in the role's network style); the
    /// guest restores the old one unless Flotilla reaches the new address in time. Then the
    /// record and the VM's metadata are updated.
    func changeNetwork(_ vmID: UUID, to spec: VMSpec, context: StepContext) async throws {
        let placement = try await placement(of: vmID)
        let vm = placement.vm
        let password = try secrets.open(vm.passwordSealed)
        let user = placement.role.sshUser
        let style = try NetworkStyle(role: placement.role)
        let old = SSHTarget(host: vm.ip, user: user, authentication: .password(password))
        try await guestNetwork.apply(spec, style: style, on: old, hostName: vm.hostName, context: context)
        let new = SSHTarget(host: spec.ip, user: user, authentication: .password(password))
        try await hostKeys.forget(host: new.hostKeyName)
        try await guestNetwork.confirm(on: new, hostName: vm.hostName, context: context)
        try? await hostKeys.forget(host: vm.ip)
        vm.ip = spec.ip
        vm.prefixLength = spec.prefixLength
        vm.gateway = spec.gateway
        vm.dns1 = spec.dns1
        vm.dns2 = spec.dns2
        try await vm.save(on: database)
        try await updateMetadata(placement, password: password)
    }
}
