import Fluent
import XCTVapor

@testable import App

/// Two instances of the application in one process on one PostgreSQL database (SPEC BEY-8):
/// a step is claimed once, a cancel sent to either instance stops the step where it runs, and
/// an instance that shuts down leaves its steps to the other. Needs PostgreSQL: `scripts/test`
/// provides it in its second pass (SQLite serves one instance).
final class JobClusterTests: XCTestCase {
    private struct Pair {
        let a: Application
        let b: Application

        func other(than owner: UUID?) -> Application { owner == a.instance.id ? b : a }
    }

    private func withTwoInstances(
        _ extra: [String: String] = [:], recorder: Recorder, _ body: (Pair) async throws -> Void
    ) async throws {
        try XCTSkipIf(TestApp.postgresURL == nil, "two instances share a PostgreSQL database (scripts/test's PostgreSQL pass)")
        let settings = ["FLOTILLA_SYNC_SECONDS": "0"].merging(extra) { $1 }
        let a = try await TestApp.make(settings, beforeBoot: { $0.flotilla.jobs.registerTestKinds(recorder) })
        let b: Application
        do {
            b = try await TestApp.make(settings, freshDatabase: false, beforeBoot: { $0.flotilla.jobs.registerTestKinds(recorder) })
        } catch {
            try await a.asyncShutdown()
            throw error
        }
        var failure: (any Error)?
        do {
            try await body(Pair(a: a, b: b))
        } catch {
            failure = error
        }
        for app in [a, b] where !app.didShutdown { try await app.asyncShutdown() }
        if let failure { throw failure }
    }

    /// The job's first step once it runs and has logged.
    private func runningStep(_ jobID: UUID, on database: any Database) async throws -> JobStep {
        for _ in 0..<200 {
            if let step = try await JobStep.query(on: database).filter(\.$job.$id == jobID).filter(\.$status == .running).first(),
                !step.log.isEmpty
            {
                return step
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw FlotillaError(.unavailable, "no step of job \(jobID) started")
    }

    func testEachStepIsClaimedOnceWhileBothInstancesClaim() async throws {
        let recorder = Recorder()
        try await withTwoInstances(["FLOTILLA_JOB_CONCURRENCY": "4"], recorder: recorder) { pair in
            let plans = try (0..<200).map { try StepPlan.test(IdempotentTestStep.self, "step \($0)", milliseconds: 20) }
            let jobID = try await pair.a.flotilla.jobs.submit(kind: "test", title: "many", by: .system, steps: plans)
            try await pair.b.flotilla.jobs.waitUntilFinished(jobID, timeout: .seconds(60))
            let runs = await recorder.items
            XCTAssertEqual(runs.count, 200, "every step ran exactly once")
            XCTAssertEqual(Set(runs).count, 200)
            let steps = try await JobStep.query(on: pair.b.db).filter(\.$job.$id == jobID).all()
            XCTAssertTrue(steps.allSatisfy { $0.status == .succeeded && $0.attempts == 1 })
            let owners = Dictionary(grouping: steps, by: \.leaseOwner).mapValues(\.count)
            XCTAssertEqual(Set(owners.keys), [pair.a.instance.id, pair.b.instance.id], "both instances took steps: \(owners)")
            let job = try await Job.find(jobID, on: pair.a.db)
            XCTAssertEqual(job?.status, .succeeded)
            XCTAssertEqual(job?.summary, "200 of 200 steps succeeded")
        }
    }

    func testACancelSentToTheOtherInstanceStopsTheStepWithinASecond() async throws {
        let recorder = Recorder()
        try await withTwoInstances(recorder: recorder) { pair in
            let jobID = try await pair.a.flotilla.jobs.submit(
                kind: "test", title: "slow", by: .system, steps: [.test(IdempotentTestStep.self, "slow", milliseconds: 60_000)])
            let step = try await runningStep(jobID, on: pair.a.db)
            // The instance that does not run the step receives the request.
            let receiver = pair.other(than: step.leaseOwner)
            XCTAssertNotEqual(receiver.instance.id, step.leaseOwner)
            // Its API and page follow the job run elsewhere: they read the database only.
            let viewer = try TestClient(receiver)
            try await viewer.signIn("admin", TestApp.adminPassword)
            let followed = try viewer.decode(API.JobBody.self, try await viewer.request(.GET, "/api/v1/jobs/\(jobID)"))
            XCTAssertEqual(followed.status, "running")
            XCTAssertEqual(followed.steps?.first?.status, "running")
            XCTAssertTrue(followed.steps?.first?.log.contains("working on slow") ?? false, followed.steps?.first?.log ?? "")
            let page = try await viewer.request(.GET, "/jobs/\(jobID)")
            XCTAssertTrue(page.body.string.contains("working on slow"), page.body.string)
            try await receiver.flotilla.jobs.cancel(jobID, by: .system)
            let asked = ContinuousClock.now
            while try await JobStep.find(step.requireID(), on: receiver.db)?.status == .running {
                try await Task.sleep(for: .milliseconds(20))
            }
            let took = ContinuousClock.now - asked
            XCTAssertLessThan(took, .seconds(1), "the running instance saw the flag in \(took)")
            try await receiver.flotilla.jobs.waitUntilFinished(jobID, timeout: .seconds(5))
            let job = try await Job.find(jobID, on: receiver.db)
            XCTAssertEqual(job?.status, .cancelled)
        }
    }

    func testTheOtherInstanceResumesTheStepsOfOneThatShutsDown() async throws {
        let recorder = Recorder()
        try await withTwoInstances(recorder: recorder) { pair in
            let jobID = try await pair.a.flotilla.jobs.submit(
                kind: "test", title: "slow", by: .system,
                steps: [
                    .test(CheckingTestStep.self, "slow", milliseconds: 60_000),
                    .test(IdempotentTestStep.self, "later", phase: 1),
                ])
            let step = try await runningStep(jobID, on: pair.a.db)
            let owner = step.leaseOwner == pair.a.instance.id ? pair.a : pair.b
            let survivor = pair.other(than: step.leaseOwner)
            try await owner.asyncShutdown()
            let stopped = ContinuousClock.now
            try await survivor.flotilla.jobs.waitUntilFinished(jobID, timeout: .seconds(10))
            XCTAssertLessThan(ContinuousClock.now - stopped, .seconds(3), "resumed at once, not after the lease would have expired")
            let steps = try await JobStep.query(on: survivor.db).filter(\.$job.$id == jobID).sort(\.$position).all()
            XCTAssertEqual(steps.map(\.status), [.succeeded, .succeeded])
            XCTAssertEqual(steps.map(\.leaseOwner), [survivor.instance.id, survivor.instance.id])
            let runs = await recorder.items
            XCTAssertEqual(runs, ["slow", "slow rerun", "later"])
        }
    }
}
