import Fluent
import RemoteShell
import VSphere
import XCTVapor

@testable import App

/// How the platform reaches guests (SPEC BEY-9), without root: the platform key and the VM's
/// pinned host key, the password hash gone from the metadata, a network change that meets
/// another host key, and key rotation with a guest that cannot be reached.
final class GuestKeyRulesTests: XCTestCase {
    func testANewVMTrustsThePlatformKeyItsHostKeyIsPinnedAndTheHashLeavesTheMetadata() async throws {
        try await InMemoryWorld.run { world in
            let vm = try await world.addReadyVM("web-01", "10.77.5.20")
            let found = try await VM.find(vm.id, on: world.app.db)
            let record = try XCTUnwrap(found)
            XCTAssertEqual(record.hostKey, InMemoryGuestShell.hostKey(for: "web-01").openSSHPublicKey)
            let active = try await PlatformKeys(database: world.app.db, secrets: world.app.flotilla.secrets).active()
            XCTAssertEqual(record.platformKeyID, active.id)
            let reference = try XCTUnwrap(record.vsphereReference)
            let metadata = try GuestConfiguration(guestInfo: try await world.vsphere.machine(reference).extraConfig)
            XCTAssertNil(metadata.passwordHash, "the hash is removed once the guest applied it")
            XCTAssertEqual(metadata.authorizedKeys, [active.publicKey])
        }
    }

    /// Review finding 1: the new address answers with another host key, so the change is refused
    /// before anything reaches that machine, and the record keeps the old address.
    func testANetworkChangeToAnAddressWithAnotherHostKeyIsRefused() async throws {
        try await InMemoryWorld.run { world in
            let vm = try await world.addReadyVM("web-01", "10.77.5.20")
            await world.shell.update("10.77.5.20") { $0.acceptsNetworkChange = false }
            await world.shell.add(.init(hostName: "impostor", password: "whatever-1"), at: "10.77.5.30")
            let job = try await world.runJob(
                .POST, "/api/v1/vms/\(vm.id)/network",
                json: VMs.NetworkInput(ip: "10.77.5.30", netmask: "24", gateway: "10.77.5.1"))
            let log = job.steps?.first?.log ?? ""
            XCTAssertEqual(job.status, "failed", log)
            XCTAssertTrue(log.contains("answers with another host key than web-01's"), log)
            let record = try await world.vm(vm.id)
            XCTAssertEqual(record.ip, "10.77.5.20")
            let reachedImpostor = await world.shell.calls.filter { $0.host == "10.77.5.30" }
            XCTAssertEqual(reachedImpostor, [], "the impostor receives nothing")
        }
    }

    /// Rotation: one step per VM; a reachable VM moves to the new key; one that cannot be
    /// reached fails its step and keeps the old key, which therefore stays in use.
    func testRotationMovesEveryReachableVMAndKeepsTheOldKeyForTheOthers() async throws {
        try await InMemoryWorld.run { world in
            let first = try await world.addReadyVM("web-01", "10.77.5.20")
            let second = try await world.addReadyVM("web-02", "10.77.5.21")
            let keys = PlatformKeys(database: world.app.db, secrets: world.app.flotilla.secrets)
            let old = try await keys.active()
            await world.shell.update("10.77.5.21") { $0.acceptsKeyLogin = false }
            let answer = try await world.admin.request(.POST, "/api/v1/ssh-keys/rotate")
            XCTAssertEqual(answer.status, .accepted, answer.body.string)
            let rotation = try world.admin.decode(SSHKeysAPI.Rotation.self, answer)
            let job = try await world.waitForJob(rotation.jobID)
            XCTAssertEqual(job.steps?.count, 3, "one step per VM, then the retirement")
            XCTAssertEqual(job.status, "failed")
            let records = try await VM.query(on: world.app.db).all()
            let trusted = Dictionary(uniqueKeysWithValues: try records.map { (try $0.requireID(), $0.platformKeyID) })
            XCTAssertEqual(trusted[first.id], rotation.key.id)
            XCTAssertEqual(trusted[second.id], old.id)
            let calls = await world.shell.calls.filter { $0.host == "10.77.5.20" && $0.commandLine.contains("authorized_keys") }
            XCTAssertEqual(calls.count, 2, "the new key is added, then the old one removed")
            let stillUsed = try await PlatformSSHKey.find(old.id, on: world.app.db)
            XCTAssertNil(stillUsed?.retiredAt, "a key some VM still trusts is not retired")
            XCTAssertNotNil(stillUsed?.privateKeySealed)
        }
    }
}
