import Fluent
import RemoteShell
import VSphere
import XCTVapor

@testable import App

/// What happens when the outside world misbehaves mid-step: SSH drops, a guest never answers
/// on its new address, a VM vanished from vSphere (vSphere and guests in memory).
final class FailurePathTests: XCTestCase {
    func testPasswordChangeSetsTheGuestsPasswordAndTheRecord() async throws {
        try await InMemoryWorld.run { world in
            let vm = try await world.addReadyVM("web-01", "10.77.5.20")
            let job = try await world.runJob(
                .POST, "/api/v1/vms/\(vm.id)/password",
                json: VMs.PasswordInput(password: "Changed-pass-2", passwordConfirmation: "Changed-pass-2"))
            XCTAssertEqual(job.status, "succeeded", job.steps?.first?.log ?? "")
            let guest = await world.shell.guests["10.77.5.20"]
            XCTAssertEqual(guest?.accepts(password: "Changed-pass-2"), true)
            let found = try await VM.find(vm.id, on: world.app.db)
            let record = try XCTUnwrap(found)
            XCTAssertEqual(try world.app.flotilla.secrets.open(record.passwordSealed), "Changed-pass-2")
        }
    }

    /// SSH drops right after `chpasswd`: the step fails with the reason, the record keeps its
    /// password, and the guest stays reachable, so the change can simply be made again.
    func testPasswordChangeWhoseConnectionDropsAfterChpasswdFailsClearlyAndCanBeRepeated() async throws {
        try await InMemoryWorld.run { world in
            let vm = try await world.addReadyVM("web-01", "10.77.5.20")
            await world.shell.update("10.77.5.20") { $0.dropsAfter = ["chpasswd"] }
            let change = VMs.PasswordInput(password: "Changed-pass-2", passwordConfirmation: "Changed-pass-2")
            let failed = try await world.runJob(.POST, "/api/v1/vms/\(vm.id)/password", json: change)
            XCTAssertEqual(failed.status, "failed")
            let log = failed.steps?.first?.log ?? ""
            XCTAssertTrue(log.contains("connection closed by the guest"), log)
            let found = try await VM.find(vm.id, on: world.app.db)
            XCTAssertEqual(
                try world.app.flotilla.secrets.open(try XCTUnwrap(found).passwordSealed), InMemoryWorld.guestPassword,
                "the record keeps the password until the guest confirms the new one")
            let record = try await world.vm(vm.id)
            XCTAssertEqual(record.status, "ready")
            await world.shell.update("10.77.5.20") { $0.dropsAfter = [] }
            let again = try await world.runJob(.POST, "/api/v1/vms/\(vm.id)/password", json: change)
            XCTAssertEqual(again.status, "succeeded", again.steps?.first?.log ?? "")
        }
    }

    func testPasswordChangeRefusedByTheGuestKeepsTheOldPassword() async throws {
        try await InMemoryWorld.run { world in
            let vm = try await world.addReadyVM("web-01", "10.77.5.20")
            await world.shell.update("10.77.5.20") { $0.user = "admin" }
            let job = try await world.runJob(
                .POST, "/api/v1/vms/\(vm.id)/password",
                json: VMs.PasswordInput(password: "Changed-pass-2", passwordConfirmation: "Changed-pass-2"))
            XCTAssertEqual(job.status, "failed")
            let found = try await VM.find(vm.id, on: world.app.db)
            let record = try XCTUnwrap(found)
            XCTAssertEqual(try world.app.flotilla.secrets.open(record.passwordSealed), InMemoryWorld.guestPassword)
        }
    }

    func testNetworkChangeMovesTheGuestAndTheRecord() async throws {
        try await InMemoryWorld.run { world in
            let vm = try await world.addReadyVM("web-01", "10.77.5.20")
            let job = try await world.runJob(
                .POST, "/api/v1/vms/\(vm.id)/network",
                json: VMs.NetworkInput(
                    ip: "10.77.5.40", netmask: "24", gateway: "10.77.5.1", dns1: "10.77.5.1", dns2: nil))
            XCTAssertEqual(job.status, "succeeded", job.steps?.first?.log ?? "")
            let moved = try await world.vm(vm.id)
            XCTAssertEqual(moved.ip, "10.77.5.40")
            let reference = try XCTUnwrap(vm.vsphereReference)
            let machine = try await world.vsphere.machine(reference)
            XCTAssertEqual(
                try GuestConfiguration(guestInfo: machine.extraConfig).ipv4?.address, "10.77.5.40",
                "the metadata was rewritten, so a rebuilt guest comes up on its new address")
        }
    }

    func testNetworkChangeThatNeverAnswersFailsClearlyAndKeepsTheRecord() async throws {
        try await InMemoryWorld.run { world in
            world.app.flotilla.vmOperations.guestNetwork.confirmTimeout = .seconds(1)
            world.app.flotilla.vmOperations.guestNetwork.probeInterval = .milliseconds(100)
            let vm = try await world.addReadyVM("web-01", "10.77.5.20")
            await world.shell.update("10.77.5.20") { $0.acceptsNetworkChange = false }
            let job = try await world.runJob(
                .POST, "/api/v1/vms/\(vm.id)/network",
                json: VMs.NetworkInput(
                    ip: "10.77.5.40", netmask: "24", gateway: "10.77.5.1", dns1: nil, dns2: nil))
            XCTAssertEqual(job.status, "failed")
            let log = job.steps?.first?.log ?? ""
            XCTAssertTrue(log.contains("web-01 did not answer on 10.77.5.40; the guest restores its old address by itself"), log)
            let record = try await world.vm(vm.id)
            XCTAssertEqual(record.ip, "10.77.5.20")
            XCTAssertEqual(record.status, "ready")
        }
    }

    func testDeletingAVMAlreadyGoneFromVSphereRemovesItsRecord() async throws {
        try await InMemoryWorld.run { world in
            let vm = try await world.addReadyVM("web-01", "10.77.5.20")
            let reference = try XCTUnwrap(vm.vsphereReference)
            await world.vsphere.remove(reference)
            let job = try await world.runJob(.DELETE, "/api/v1/vms/\(vm.id)")
            XCTAssertEqual(job.status, "succeeded", job.steps?.first?.log ?? "")
            XCTAssertEqual(job.steps?.first?.attempts, 1, "nothing to retry")
            XCTAssertTrue(job.steps?.first?.log.contains("already gone from vSphere") == true, job.steps?.first?.log ?? "")
            let gone = try await world.admin.request(.GET, "/api/v1/vms/\(vm.id)")
            XCTAssertEqual(gone.status, .notFound)
        }
    }
}
