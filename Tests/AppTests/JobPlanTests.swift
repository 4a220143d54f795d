import Fluent
import XCTVapor

@testable import App

/// How environment jobs are planned and run: which steps, in which order, with what effect on
/// vSphere and the records (vSphere and guests in memory).
final class JobPlanTests: XCTestCase {
    func testDeletingEnvironmentsDestroysTheVMsFirstThenTheRecords() async throws {
        try await InMemoryWorld.run { world in
            try await world.addReadyVM("web-01", "10.77.5.20")
            try await world.addReadyVM("redis-01", "10.77.5.21", role: "redis")
            let job = try await world.runJob(.POST, "/api/v1/environments/delete", json: API.IDs(ids: [world.environmentID]))
            XCTAssertEqual(job.status, "succeeded")
            let steps = try XCTUnwrap(job.steps)
            XCTAssertEqual(steps.dropLast().map(\.title).sorted(), ["delete redis-01", "delete web-01"])
            XCTAssertEqual(steps.last?.title, "delete environment staging")
            let recordStep = try XCTUnwrap(steps.last)
            for destroyStep in steps.dropLast() {
                XCTAssertLessThanOrEqual(
                    try XCTUnwrap(destroyStep.finishedAt), try XCTUnwrap(recordStep.startedAt),
                    "the records go only after every VM was destroyed")
            }
            let machines = await world.vsphere.machines.values.filter { !$0.isTemplate }
            XCTAssertTrue(machines.isEmpty, "both VMs were destroyed on vSphere")
            let calls = await world.vsphere.calls
            XCTAssertEqual(calls.filter { $0.hasPrefix("power poweredOff") }.count, 2, "each was powered off before being destroyed")
            let gone = try await world.admin.request(.GET, "/api/v1/environments/\(world.environmentID)")
            XCTAssertEqual(gone.status, .notFound)
            let vmCount = try await VM.query(on: world.app.db).count()
            XCTAssertEqual(vmCount, 0)
        }
    }

    func testPoweringEnvironmentsSkipsVMsThatWereNeverCreated() async throws {
        try await InMemoryWorld.run { world in
            let vm = try await world.addReadyVM("web-01", "10.77.5.20")
            let off = try await world.runJob(
                .POST, "/api/v1/environments/power", json: API.PowerInput(action: "off", ids: [world.environmentID]))
            XCTAssertEqual(off.status, "succeeded")
            XCTAssertEqual(off.steps?.map(\.title), ["power off web-01"])
            let reference = try XCTUnwrap(vm.vsphereReference)
            let state = try await world.vsphere.machine(reference).powerState
            XCTAssertEqual(state, .poweredOff)
            let record = try await world.vm(vm.id)
            XCTAssertEqual(record.powerState, "poweredOff")
            let bad = try await world.admin.request(
                .POST, "/api/v1/environments/power", json: API.PowerInput(action: "sideways", ids: [world.environmentID]))
            XCTAssertEqual(bad.status, .badRequest)
            XCTAssertTrue(bad.body.string.contains("action must be on, off or restart"))
        }
    }
}
