import Fluent
import XCTVapor

@testable import App

/// The job engine on its own: phases, failures, retries, limits, cancellation.
final class JobEngineTests: XCTestCase {
    private func steps(_ app: Application, _ jobID: UUID) async throws -> [JobStep] {
        try await JobStep.query(on: app.db).filter(\.$job.$id == jobID).sort(\.$position).all()
    }

    func testPhasesRunInOrderAndAFailureSkipsLaterPhases() async throws {
        try await TestApp.run { app in
            let jobs = app.flotilla.jobs
            let order = Recorder()
            jobs.registerTestKinds(order)
            let jobID = try await jobs.submit(
                kind: "test", title: "phases", by: .system,
                steps: [
                    .test(IdempotentTestStep.self, "a", vmName: "vm-a"),
                    .test(IdempotentTestStep.self, "b", fails: true, vmName: "vm-b"),
                    .test(IdempotentTestStep.self, "c", phase: 1),
                ])
            try await jobs.waitUntilFinished(jobID)
            let job = try await Job.find(jobID, on: app.db)
            XCTAssertEqual(job?.status, .failed)
            XCTAssertEqual(job?.summary, "1 of 3 steps succeeded, 1 failed, 1 cancelled")
            let recorded = await order.items
            XCTAssertEqual(Set(recorded), ["a", "b"], "phase 1 never started")
            let states = try await steps(app, jobID).map(\.status)
            XCTAssertEqual(states, [.succeeded, .failed, .cancelled])
            let log = try await steps(app, jobID)[1].log
            XCTAssertTrue(log.contains("failed: b broke"), log)
            XCTAssertTrue(log.contains("working on b"), log)
            let audit = try await LogEntry.query(on: app.db).filter(\.$action ~~ ["test.a", "test.b"]).all()
            XCTAssertEqual(
                Set(audit.map { "\($0.kind) \($0.action) \($0.result) \($0.vmName ?? "")" }),
                ["operation test.a success vm-a", "error test.b failure vm-b"])
        }
    }

    func testSafeStepsAreRetried() async throws {
        try await TestApp.run { app in
            let attempts = Recorder()
            app.flotilla.jobs.registerTestKinds(attempts)
            let jobID = try await app.flotilla.jobs.submit(
                kind: "test", title: "retry", by: .system, steps: [.test(FlakyTestStep.self, "flaky")])
            try await app.flotilla.jobs.waitUntilFinished(jobID)
            let status = try await Job.find(jobID, on: app.db)?.status
            XCTAssertEqual(status, .succeeded)
            let step = try await steps(app, jobID)[0]
            XCTAssertEqual(step.attempts, 3)
            XCTAssertTrue(step.log.contains("attempt 1 failed: not yet; trying again"), step.log)
        }
    }

    func testThePerConnectionLimitHolds() async throws {
        try await TestApp.run(["FLOTILLA_JOB_CONCURRENCY": "10", "FLOTILLA_JOB_CONCURRENCY_PER_CONNECTION": "2"]) { app in
            let gauge = Gauge()
            app.flotilla.jobs.registerTestKinds(Recorder(), gauge: gauge)
            let connection = UUID()
            let plans = try (0..<6).map {
                try StepPlan.test(IdempotentTestStep.self, "step \($0)", milliseconds: 150, connectionID: connection)
            }
            let jobID = try await app.flotilla.jobs.submit(kind: "test", title: "limited", by: .system, steps: plans)
            try await app.flotilla.jobs.waitUntilFinished(jobID)
            let peak = await gauge.peak
            XCTAssertEqual(peak, 2)
            let status = try await Job.find(jobID, on: app.db)?.status
            XCTAssertEqual(status, .succeeded)
        }
    }

    func testCancellationStopsRunningAndQueuedSteps() async throws {
        try await TestApp.run(["FLOTILLA_JOB_CONCURRENCY": "1"]) { app in
            let jobs = app.flotilla.jobs
            let started = Recorder()
            jobs.registerTestKinds(started)
            let plans = try (0..<3).map { try StepPlan.test(IdempotentTestStep.self, "slow \($0)", milliseconds: 30_000) }
            let jobID = try await jobs.submit(kind: "test", title: "slow", by: .system, steps: plans)
            while await started.items.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            try await jobs.cancel(jobID, by: .system)
            let clock = ContinuousClock.now
            try await jobs.waitUntilFinished(jobID)
            XCTAssertLessThan(ContinuousClock.now - clock, .seconds(5), "cancellation does not wait for the steps")
            let job = try await Job.find(jobID, on: app.db)
            XCTAssertEqual(job?.status, .cancelled)
            let states = try await steps(app, jobID).map(\.status)
            XCTAssertEqual(states, [.cancelled, .cancelled, .cancelled])
            let startedCount = await started.items.count
            XCTAssertEqual(startedCount, 1, "queued steps never start")
            do {
                try await jobs.cancel(jobID, by: .system)
                XCTFail("a finished job cannot be cancelled")
            } catch let error as FlotillaError {
                XCTAssertEqual(error.kind, .conflict)
            }
        }
    }

    func testAJobWithoutStepsSucceedsAtOnce() async throws {
        try await TestApp.run { app in
            let jobID = try await app.flotilla.jobs.submit(kind: "test", title: "nothing to do", by: .system, steps: [])
            let job = try await Job.find(jobID, on: app.db)
            XCTAssertEqual(job?.status, .succeeded)
            XCTAssertEqual(job?.summary, "0 of 0 steps succeeded")
        }
    }
}
