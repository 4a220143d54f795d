import Fluent
import XCTVapor

@testable import App

/// The job engine on its own: phases, failures, retries, limits, cancellation, restarts.
final class JobEngineTests: XCTestCase {
    private func engine(_ app: Application, concurrency: Int = 8, perConnection: Int = 8) -> JobEngine {
        JobEngine(
            database: app.db, logger: app.logger, concurrency: concurrency, perConnection: perConnection, retryDelay: .milliseconds(10))
    }

    private func steps(_ app: Application, _ jobID: UUID) async throws -> [JobStep] {
        try await JobStep.query(on: app.db).filter(\.$job.$id == jobID).sort(\.$position).all()
    }

    func testPhasesRunInOrderAndAFailureSkipsLaterPhases() async throws {
        try await TestApp.run { app in
            let jobs = engine(app)
            let order = Recorder()
            let jobID = try await jobs.submit(
                kind: "test", title: "phases", by: .system,
                steps: [
                    StepPlan(action: "test.a", title: "a", vmName: "vm-a") { context in
                        await context.log("working")
                        await order.add("a")
                    },
                    StepPlan(action: "test.b", title: "b", vmName: "vm-b") { _ in
                        await order.add("b")
                        throw FlotillaError(.unavailable, "b broke")
                    },
                    StepPlan(action: "test.c", title: "c", phase: 1) { _ in await order.add("c") },
                ])
            await jobs.waitUntilFinished(jobID)
            let job = try await Job.find(jobID, on: app.db)
            XCTAssertEqual(job?.status, .failed)
            XCTAssertEqual(job?.summary, "1 of 3 steps succeeded, 1 failed, 1 cancelled")
            let recorded = await order.items
            XCTAssertEqual(Set(recorded), ["a", "b"], "phase 1 never started")
            let states = try await steps(app, jobID).map(\.status)
            XCTAssertEqual(states, [.succeeded, .failed, .cancelled])
            let log = try await steps(app, jobID)[1].log
            XCTAssertTrue(log.contains("failed: b broke"), log)
            let audit = try await LogEntry.query(on: app.db).filter(\.$action ~~ ["test.a", "test.b"]).all()
            XCTAssertEqual(
                Set(audit.map { "\($0.kind) \($0.action) \($0.result) \($0.vmName ?? "")" }),
                ["operation test.a success vm-a", "error test.b failure vm-b"])
        }
    }

    func testSafeStepsAreRetried() async throws {
        try await TestApp.run { app in
            let jobs = engine(app)
            let attempts = Recorder()
            let jobID = try await jobs.submit(
                kind: "test", title: "retry", by: .system,
                steps: [
                    StepPlan(action: "test.flaky", title: "flaky", retryable: true) { _ in
                        await attempts.add("try")
                        if await attempts.items.count < 3 { throw FlotillaError(.unavailable, "not yet") }
                    }
                ])
            await jobs.waitUntilFinished(jobID)
            let status = try await Job.find(jobID, on: app.db)?.status
            XCTAssertEqual(status, .succeeded)
            let step = try await steps(app, jobID)[0]
            XCTAssertEqual(step.attempts, 3)
            XCTAssertTrue(step.log.contains("attempt 1 failed: not yet; trying again"))
        }
    }

    func testThePerConnectionLimitHolds() async throws {
        try await TestApp.run { app in
            let jobs = engine(app, concurrency: 10, perConnection: 2)
            let gauge = Gauge()
            let connection = UUID()
            let plans = (0..<6).map { index in
                StepPlan(action: "test.limited", title: "step \(index)", connectionID: connection) { _ in
                    await gauge.enter()
                    try await Task.sleep(for: .milliseconds(150))
                    await gauge.leave()
                }
            }
            let jobID = try await jobs.submit(kind: "test", title: "limited", by: .system, steps: plans)
            await jobs.waitUntilFinished(jobID)
            let peak = await gauge.peak
            XCTAssertEqual(peak, 2)
        }
    }

    func testCancellationStopsRunningAndQueuedSteps() async throws {
        try await TestApp.run { app in
            let jobs = engine(app, concurrency: 1)
            let started = Recorder()
            let plans = (0..<3).map { index in
                StepPlan(action: "test.slow", title: "slow \(index)") { _ in
                    await started.add("\(index)")
                    try await Task.sleep(for: .seconds(30))
                }
            }
            let jobID = try await jobs.submit(kind: "test", title: "slow", by: .system, steps: plans)
            while await started.items.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            try await jobs.cancel(jobID, by: .system)
            let clock = ContinuousClock.now
            await jobs.waitUntilFinished(jobID)
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

    func testJobsLeftRunningByAStoppedServerEndInterrupted() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flotilla-restart-\(UUID())").path
        let first = try await TestApp.make(["FLOTILLA_DATA_DIR": directory])
        let jobs = engine(first)
        let jobID = try await jobs.submit(
            kind: "test", title: "long", by: .system,
            steps: [
                StepPlan(action: "test.long", title: "long") { _ in try await Task.sleep(for: .seconds(60)) }
            ])
        while try await Job.find(jobID, on: first.db)?.status != .running { try await Task.sleep(for: .milliseconds(20)) }
        // The server goes away without finishing the job (as a crash would leave it).
        try await first.asyncShutdown()

        let second = try await TestApp.make(["FLOTILLA_DATA_DIR": directory], freshDatabase: false)
        let job = try await Job.find(jobID, on: second.db)
        XCTAssertEqual(job?.status, .interrupted)
        XCTAssertEqual(job?.summary, "the server stopped while this was running")
        let step = try await JobStep.query(on: second.db).filter(\.$job.$id == jobID).first()
        XCTAssertEqual(step?.status, .interrupted)
        try await second.asyncShutdown()
        await jobs.cancelAll()
    }
}

actor Recorder {
    private(set) var items: [String] = []
    func add(_ item: String) { items.append(item) }
}

actor Gauge {
    private var current = 0
    private(set) var peak = 0
    func enter() {
        current += 1
        peak = max(peak, current)
    }
    func leave() { current -= 1 }
}
