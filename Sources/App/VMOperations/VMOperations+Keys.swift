import Fluent
import Foundation
import RemoteShell

extension VMOperations {
    /// Key rotation on one VM: adds the new platform key to the guest, proves that it logs in,
    /// then removes the old key and records the change (the metadata carries the new key, so a
    /// rebuilt guest gets it). A guest that cannot be reached keeps the old key and fails this step.
    func moveToKey(_ vmID: UUID, keyID: UUID, context: StepContext) async throws {
        let placement = try await placement(of: vmID)
        let vm = placement.vm
        let user = placement.role.sshUser
        guard let newKey = try await PlatformSSHKey.find(keyID, on: database) else {
            throw FlotillaError.notFound("the new platform key is gone")
        }
        guard vm.platformKeyID != keyID else {
            await context.log("\(vm.hostName) already trusts \(newKey.fingerprint)")
            return
        }
        let oldKey = try await keys.key(of: vm)
        let current = try await login.target(for: vm, user: user)
        let added = try await shell.run(GuestAuthorizedKeys.add(newKey.publicKey), on: current, timeout: .seconds(20))
        guard added.succeeded else { throw FlotillaError(.unavailable, "could not add the new key: \(added.errorOutput.prefix(200))") }
        await context.log("added \(newKey.fingerprint) to \(user)'s authorized keys")
        await shell.closeConnections(toHost: vm.ip)
        var byNewKey = current
        byNewKey.authentication = .privateKey(try keys.privateKey(newKey))
        let proof = try await shell.run(Command("true"), on: byNewKey, timeout: .seconds(20))
        guard proof.succeeded else { throw FlotillaError(.unavailable, "the new key does not log in on \(vm.hostName)") }
        await context.log("the new key logs in")
        let removed = try await shell.run(GuestAuthorizedKeys.remove(oldKey.publicKey), on: byNewKey, timeout: .seconds(20))
        guard removed.succeeded else {
            throw FlotillaError(.unavailable, "could not remove the old key: \(removed.errorOutput.prefix(200))")
        }
        vm.platformKeyID = keyID
        try await vm.save(on: database)
        await context.log("removed the old key \(oldKey.fingerprint)")
        try await updateMetadata(placement, key: newKey)
    }

    func keyRotationStep(_ vm: VM, to key: PlatformSSHKey) throws -> StepPlan {
        try StepPlan(
            VMKeyRotationStep.self, .init(vmID: try vm.requireID(), keyID: try key.requireID()),
            title: "move \(vm.hostName) to key \(key.fingerprint)", vmName: vm.hostName, vmRole: vm.role.name,
            connectionID: vm.role.$connection.id)
    }
}

/// Moves one VM to the new platform key (`VMOperations.moveToKey`).
struct VMKeyRotationStep: StepKind {
    struct Parameters: Codable, Sendable {
        var vmID: UUID
        var keyID: UUID
    }

    static let name = "vm.ssh-key"
    /// Cut off between removing the old key and recording the new one, the guest trusts only a
    /// key its record does not name: a person checks before anything logs in again.
    static let rerunRule = RerunRule.needsAttention(
        "the key change was cut off: the guest may trust only the new key while its record names the old one; rotate again or check the guest"
    )
    static let attemptsOnFailure = 3

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        try await context.operations.moveToKey(parameters.vmID, keyID: parameters.keyID, context: context)
    }
}

/// The last step of a rotation: retires the keys no VM trusts any more.
struct RetireUnusedKeysStep: StepKind {
    struct Parameters: Codable, Sendable {}

    static let name = "ssh-key.retire"
    static let rerunRule = RerunRule.idempotent

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        let retired = try await context.operations.keys.retireUnused()
        await context.log(retired.isEmpty ? "no key to retire" : "retired " + retired.map(\.fingerprint).joined(separator: ", "))
    }
}
