import Foundation
import RemoteShell

/// How the platform logs in to a VM's guest (SPEC BEY-9): as the role's user with the platform
/// key the VM trusts, and only when the guest shows the host key pinned to the VM, whatever
/// address it answers on. A password is never offered.
struct GuestLogin: Sendable {
    let keys: PlatformKeys

    /// The login to a VM whose host key is pinned, at `address` (its recorded one unless given).
    func target(for vm: VM, user: String, at address: String? = nil) async throws -> SSHTarget {
        guard let line = vm.hostKey else {
            throw FlotillaError.conflict("\(vm.hostName) has no pinned host key; Flotilla has never logged in to it")
        }
        let hostKey = try SSHHostKey(openSSHPublicKey: line)
        let key = try keys.privateKey(try await keys.key(of: vm))
        return SSHTarget(host: address ?? vm.ip, user: user, authentication: .privateKey(key), hostKeyCheck: .expected(hostKey))
    }

    /// First contact with a guest just made from its template: the platform key it was given,
    /// and whatever host key it presents, which the caller then pins to the VM.
    func firstContact(with vm: VM, user: String, key: PlatformSSHKey) throws -> SSHTarget {
        SSHTarget(host: vm.ip, user: user, authentication: .privateKey(try keys.privateKey(key)), hostKeyCheck: .firstContact)
    }
}
