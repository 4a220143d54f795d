import Fluent
import XCTVapor

@testable import App

/// Cancellation is a flag in the database (`Job.cancelRequested`), so a request that reaches
/// another instance sharing the database still stops the job where it runs.
final class JobCancellationTests: XCTestCase {
    func testAJobStopsWhenItsCancelFlagIsSetInTheDatabase() async throws {
        try await TestApp.run { app in
            let jobs = JobEngine(
                database: app.db, logger: app.logger, concurrency: 1, perConnection: 1,
                retryDelay: .milliseconds(10), cancelPollInterval: .milliseconds(100))
            let started = Recorder()
            let plans = (0..<3).map { index in
                StepPlan(action: "test.slow", title: "slow \(index)") { _ in
                    await started.add("\(index)")
                    try await Task.sleep(for: .seconds(30))
                }
            }
            let jobID = try await jobs.submit(kind: "test", title: "slow", by: .system, steps: plans)
            while await started.items.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            // What `cancel` on another instance does: it has no task to cancel, only the record.
            let found = try await Job.find(jobID, on: app.db)
            let record = try XCTUnwrap(found)
            record.cancelRequested = true
            try await record.save(on: app.db)
            let clock = ContinuousClock.now
            await jobs.waitUntilFinished(jobID)
            XCTAssertLessThan(ContinuousClock.now - clock, .seconds(5), "the engine notices the flag")
            let job = try await Job.find(jobID, on: app.db)
            XCTAssertEqual(job?.status, .cancelled)
            let steps = try await JobStep.query(on: app.db).filter(\.$job.$id == jobID).all()
            XCTAssertTrue(steps.allSatisfy { $0.status == .cancelled }, steps.map(\.status.rawValue).joined(separator: ", "))
        }
    }
}
