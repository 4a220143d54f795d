import Fluent
import Foundation
import RemoteShell

extension VMOperations {
    /// SPEC VM-9: sets the password inside the guest over the platform's key login, proves it
    /// reached the guest, then stores it. The metadata is rewritten without any password hash.
    func changePassword(_ vmID: UUID, to newPassword: String, context: StepContext) async throws {
        let placement = try await placement(of: vmID)
        let vm = placement.vm
        let user = placement.role.sshUser
        let target = try await login.target(for: vm, user: user)
        try await GuestPassword(shell: shell).change(user: user, to: newPassword, on: target, hostName: vm.hostName, context: context)
        vm.passwordSealed = try secrets.seal(newPassword)
        try await vm.save(on: database)
        try await updateMetadata(placement, key: try await keys.key(of: vm))
    }

    /// SPEC VM-10: applies a new address inside the guest (in the role's network style); the
    /// guest restores the old one unless Flotilla reaches the new address in time. The new
    /// address must answer with the host key pinned to the VM: any other machine there is
    /// refused before it receives anything, and the record stays as it was. Then the record and
    /// the VM's metadata are updated.
    func changeNetwork(_ vmID: UUID, to spec: VMSpec, context: StepContext) async throws {
        let placement = try await placement(of: vmID)
        let vm = placement.vm
        let user = placement.role.sshUser
        let style = try NetworkStyle(role: placement.role)
        let old = try await login.target(for: vm, user: user)
        try await guestNetwork.apply(spec, style: style, on: old, hostName: vm.hostName, context: context)
        let new = try await login.target(for: vm, user: user, at: spec.ip)
        await shell.closeConnections(toHost: spec.ip)
        try await guestNetwork.confirm(on: new, hostName: vm.hostName, context: context)
        vm.ip = spec.ip
        vm.prefixLength = spec.prefixLength
        vm.gateway = spec.gateway
        vm.dns1 = spec.dns1
        vm.dns2 = spec.dns2
        try await vm.save(on: database)
        try await updateMetadata(placement, key: try await keys.key(of: vm))
    }
}
