import Fluent
import XCTVapor

@testable import App

/// Cancellation is a flag in the database (`Job.cancelRequested`), so a request that reaches
/// another instance sharing the database still stops the job where it runs.
final class JobCancellationTests: XCTestCase {
    func testAStepStopsWithinASecondOfItsJobsCancelFlag() async throws {
        try await TestApp.run(["FLOTILLA_JOB_CONCURRENCY": "1"]) { app in
            let started = Recorder()
            app.flotilla.jobs.registerTestKinds(started)
            let plans = try (0..<3).map { try StepPlan.test(IdempotentTestStep.self, "slow \($0)", milliseconds: 30_000) }
            let jobID = try await app.flotilla.jobs.submit(kind: "test", title: "slow", by: .system, steps: plans)
            while await started.items.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            // What `cancel` on another instance does: it has no task to cancel, only the record.
            let foundRecord = try await Job.find(jobID, on: app.db)
            let record = try XCTUnwrap(foundRecord)
            record.cancelRequested = true
            try await record.save(on: app.db)
            let flagged = ContinuousClock.now
            while try await JobStep.query(on: app.db).filter(\.$job.$id == jobID).filter(\.$status == .running).count() > 0 {
                XCTAssertLessThan(ContinuousClock.now - flagged, .seconds(1), "the running step noticed the flag")
                try await Task.sleep(for: .milliseconds(20))
            }
            try await app.flotilla.jobs.waitUntilFinished(jobID, timeout: .seconds(5))
            let job = try await Job.find(jobID, on: app.db)
            XCTAssertEqual(job?.status, .cancelled)
            let steps = try await JobStep.query(on: app.db).filter(\.$job.$id == jobID).sort(\.$position).all()
            XCTAssertEqual(steps.map(\.status), [.cancelled, .cancelled, .cancelled])
            let startedCount = await started.items.count
            XCTAssertEqual(startedCount, 1, "queued steps never start")
        }
    }
}
