import Fluent
import VSphere
import XCTVapor

@testable import App

/// Steps as rows (SPEC BEY-8): the registry, rows that cannot run, and how a step whose
/// instance died (its lease expired) is taken over according to its kind's rerun rule.
final class JobStepRowTests: XCTestCase {
    /// A job with one step as another instance (or an older release) left it in the database.
    private func insertJob(
        _ app: Application, kind: String?, parameters: String?, status: JobStatus = .queued, leaseOwner: UUID? = nil,
        leaseExpiresAt: Date? = nil, attempts: Int = 0
    ) async throws -> (job: UUID, step: UUID) {
        let job = Job()
        job.kind = "test"
        job.title = "left by another instance"
        job.status = status == .queued ? .queued : .running
        job.operatorName = "system"
        job.summary = "1 step queued"
        job.cancelRequested = false
        try await job.create(on: app.db)
        let step = JobStep()
        step.$job.id = try job.requireID()
        step.position = 0
        step.title = "the step"
        step.kind = kind
        step.parameters = parameters
        step.phase = 0
        step.status = status
        step.attempts = attempts
        step.log = ""
        step.leaseOwner = leaseOwner
        step.leaseExpiresAt = leaseExpiresAt
        try await step.create(on: app.db)
        return (try job.requireID(), try step.requireID())
    }

    private func step(_ app: Application, _ id: UUID) async throws -> JobStep {
        let found = try await JobStep.find(id, on: app.db)
        return try XCTUnwrap(found)
    }

    private static let parameters = #"{"label":"left","milliseconds":0,"fails":false}"#

    func testTheRegistryRefusesAnUnknownKindAndStoresNothing() async throws {
        try await TestApp.run { app in
            var plan = try StepPlan.test(IdempotentTestStep.self, "a")
            plan.kind = "vm.teleport"
            do {
                _ = try await app.flotilla.jobs.submit(kind: "test", title: "unknown", by: .system, steps: [plan])
                XCTFail("a step of an unregistered kind was accepted")
            } catch let error as FlotillaError {
                XCTAssertEqual(error.kind, .validation)
                XCTAssertEqual(error.message, "no step kind 'vm.teleport' is registered")
            }
            let jobs = try await Job.query(on: app.db).count()
            XCTAssertEqual(jobs, 0)
        }
    }

    func testRowsThatCannotRunNeedAttentionAndTheEngineGoesOn() async throws {
        try await TestApp.run { app in
            let recorder = Recorder()
            app.flotilla.jobs.registerTestKinds(recorder)
            // Parameters of an older shape (a field renamed), an unknown kind, and a row from
            // before steps had kinds.
            let oldShape = try await insertJob(app, kind: IdempotentTestStep.name, parameters: #"{"name":"old"}"#)
            let unknown = try await insertJob(app, kind: "vm.teleport", parameters: "{}")
            let kindless = try await insertJob(app, kind: nil, parameters: nil)
            for (ids, reason) in [
                (oldShape, "its parameters no longer decode as test.idempotent: 'label' is missing"),
                (unknown, "no step kind 'vm.teleport' is registered"),
                (kindless, "the step has no kind (it predates jobs as data)"),
            ] {
                try await app.flotilla.jobs.waitUntilFinished(ids.job, timeout: .seconds(10))
                let foundJob = try await Job.find(ids.job, on: app.db)
                let job = try XCTUnwrap(foundJob)
                XCTAssertEqual(job.status, .needsAttention)
                XCTAssertEqual(job.summary, "0 of 1 step succeeded, 1 needs attention")
                let row = try await step(app, ids.step)
                XCTAssertEqual(row.status, .needsAttention)
                XCTAssertEqual(row.attentionReason, reason)
                XCTAssertEqual(row.attempts, 1, "tried once, not in a loop")
            }
            // The engine still runs the next job, and the API and page show the state.
            let next = try await app.flotilla.jobs.submit(
                kind: "test", title: "next", by: .system, steps: [.test(IdempotentTestStep.self, "next")])
            try await app.flotilla.jobs.waitUntilFinished(next)
            let nextStatus = try await Job.find(next, on: app.db)?.status
            XCTAssertEqual(nextStatus, .succeeded)
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            let body = try admin.decode(API.JobBody.self, try await admin.request(.GET, "/api/v1/jobs/\(oldShape.job)"))
            XCTAssertEqual(body.status, "needs-attention")
            XCTAssertEqual(body.steps?.first?.attentionReason, "its parameters no longer decode as test.idempotent: 'label' is missing")
            let page = try await admin.request(.GET, "/jobs/\(oldShape.job)")
            XCTAssertTrue(page.body.string.contains("Needs attention:"), page.body.string)
            let listed = try await admin.request(.GET, "/api/v1/jobs?status=needs-attention")
            XCTAssertEqual(try admin.decode(ListResponse<API.JobBody>.self, listed).items.count, 3)
        }
    }

    func testExpiredLeasesAreTakenOverByTheKindsRule() async throws {
        try await TestApp.run { app in
            let recorder = Recorder()
            app.flotilla.jobs.registerTestKinds(recorder)
            let dead = UUID()
            let expired = Date().addingTimeInterval(-30)
            let idempotent = try await insertJob(
                app, kind: IdempotentTestStep.name, parameters: Self.parameters, status: .running, leaseOwner: dead,
                leaseExpiresAt: expired, attempts: 1)
            let checking = try await insertJob(
                app, kind: CheckingTestStep.name, parameters: Self.parameters, status: .running, leaseOwner: dead,
                leaseExpiresAt: expired, attempts: 1)
            let attention = try await insertJob(
                app, kind: AttentionTestStep.name, parameters: Self.parameters, status: .running, leaseOwner: dead,
                leaseExpiresAt: expired, attempts: 1)
            for ids in [idempotent, checking, attention] {
                try await app.flotilla.jobs.waitUntilFinished(ids.job, timeout: .seconds(10))
            }
            let idempotentStep = try await step(app, idempotent.step)
            XCTAssertEqual(idempotentStep.status, .succeeded)
            XCTAssertEqual(idempotentStep.attempts, 2)
            XCTAssertEqual(idempotentStep.leaseOwner, app.instance.id)
            XCTAssertTrue(idempotentStep.log.contains("its instance \(dead.uuidString.prefix(8)) stopped running it"), idempotentStep.log)
            XCTAssertTrue(idempotentStep.log.contains("queued again: running it again is safe"), idempotentStep.log)
            let checkingStep = try await step(app, checking.step)
            XCTAssertEqual(checkingStep.status, .succeeded)
            let attentionStep = try await step(app, attention.step)
            XCTAssertEqual(attentionStep.status, .needsAttention)
            XCTAssertEqual(attentionStep.attentionReason, "a person must check the half-done work")
            let attentionJob = try await Job.find(attention.job, on: app.db)?.status
            XCTAssertEqual(attentionJob, .needsAttention)
            let runs = await recorder.items
            XCTAssertEqual(runs.sorted(), ["left rerun", "left rerun"], "both re-runs know they are re-runs; the third never ran")
        }
    }

    /// A starting instance touches only expired leases: another live instance's step stays its own.
    func testALiveLeaseOfAnotherInstanceIsLeftAlone() async throws {
        try await TestApp.run { app in
            app.flotilla.jobs.registerTestKinds(Recorder())
            let other = UUID()
            let live = try await insertJob(
                app, kind: IdempotentTestStep.name, parameters: Self.parameters, status: .running, leaseOwner: other,
                leaseExpiresAt: Date().addingTimeInterval(60), attempts: 1)
            // Several polls of this instance's engine.
            try await Task.sleep(for: .seconds(1))
            let row = try await step(app, live.step)
            XCTAssertEqual(row.status, .running)
            XCTAssertEqual(row.leaseOwner, other)
            XCTAssertEqual(row.attempts, 1)
            XCTAssertEqual(row.log, "")
        }
    }

    /// vm.create cut off after its clone: run again, it adopts the VM on vSphere instead of
    /// cloning a second one.
    func testACutOffCreateAdoptsItsCloneInsteadOfCloningTwice() async throws {
        try await InMemoryWorld.run { world in
            let app = world.app
            let foundRole = try await Role.query(on: app.db).filter(\.$name == "web").first()
            let role = try XCTUnwrap(foundRole)
            let spec = try VMSpec(hostName: "web-07", ip: "10.77.5.27", netmask: "24", gateway: "10.77.5.1", dns1: nil, dns2: nil)
            let vm = try VM(
                environmentID: world.environmentID, role: role, spec: spec,
                passwordSealed: try app.flotilla.secrets.seal(InMemoryWorld.guestPassword), status: .provisioning, notes: "")
            try await vm.create(on: app.db)
            // What the first run left: the clone exists and runs, the record does not know it.
            await world.shell.add(.init(hostName: "web-07", password: InMemoryWorld.guestPassword, running: ["sshd", "web"]), at: spec.ip)
            let clone = await world.vsphere.addMachine("web-07", powerState: .poweredOn, guestIPAddress: spec.ip)
            let ids = try await insertJob(
                app, kind: VMCreateStep.name, parameters: try StepRegistry.encode(VMCreateStep.Parameters(vmID: try vm.requireID())),
                status: .running, leaseOwner: UUID(), leaseExpiresAt: Date().addingTimeInterval(-1), attempts: 1)
            let job = try await world.waitForJob(ids.job)
            XCTAssertEqual(job.status, "succeeded", job.steps?.first?.log ?? "")
            XCTAssertTrue(job.steps?.first?.log.contains("adopting \(clone)") ?? false, job.steps?.first?.log ?? "")
            let machines = await world.vsphere.machines.values.filter { $0.name == "web-07" }
            XCTAssertEqual(machines.count, 1, "no second clone")
            let calls = await world.vsphere.calls
            XCTAssertFalse(calls.contains { $0.hasPrefix("clone") }, calls.joined(separator: "\n"))
            let record = try await world.vm(try vm.requireID())
            XCTAssertEqual(record.vsphereReference, clone)
            XCTAssertEqual(record.status, "ready")
        }
    }
}
