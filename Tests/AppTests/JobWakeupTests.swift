import FluentPostgresDriver
import NIOPosix
import XCTVapor

@testable import App

/// The notifications other instances wake on (SPEC BEY-8, migrations 016 and 024), read by a
/// listener of the test's own as another instance would: a job queued, a lease given back at
/// shutdown, a cancel request, a step taken over and a claim that filled its instance each send
/// one; a step's end written by the instance holding it and a claim that left nothing runnable
/// send none (that instance claims again itself). Needs PostgreSQL (scripts/test's second pass).
final class JobWakeupTests: XCTestCase {
    private actor Signals {
        private(set) var received: [String] = []
        func add(_ signal: JobWakeups.Signal?) { received.append(signal?.rawValue ?? "listening") }
    }

    func testQueueChangesAreNotifiedAndClaimsAreNot() async throws {
        try await withListener { app, signals in
            let cancelled = try await app.flotilla.jobs.submit(
                kind: "test", title: "slow", by: .system, steps: [.test(IdempotentTestStep.self, "cancelled", milliseconds: 60_000)])
            try await waitUntilRunning(cancelled, on: app.db)
            // The claim that started it woke nobody.
            try await waitUntil(signals, received: ["listening", "queued"])
            try await app.flotilla.jobs.cancel(cancelled, by: .system)
            try await app.flotilla.jobs.waitUntilFinished(cancelled, timeout: .seconds(5))
            // The end that its instance wrote woke nobody either.
            try await waitUntil(signals, received: ["listening", "queued", "cancel"])

            let released = try await app.flotilla.jobs.submit(
                kind: "test", title: "slow", by: .system, steps: [.test(IdempotentTestStep.self, "released", milliseconds: 60_000)])
            try await waitUntilRunning(released, on: app.db)
            try await app.asyncShutdown()
            try await waitUntil(signals, received: ["listening", "queued", "cancel", "queued", "released"])
        }
    }

    /// An instance that can take no more (its limit is one step here) tells the others after
    /// each claim, as runnable steps may be left for them; the ends it writes tell nobody.
    func testAClaimThatFillsItsInstanceIsNotified() async throws {
        try await withListener(["FLOTILLA_JOB_CONCURRENCY": "1"]) { app, signals in
            let job = try await app.flotilla.jobs.submit(
                kind: "test", title: "two", by: .system,
                steps: [.test(IdempotentTestStep.self, "first", milliseconds: 200), .test(IdempotentTestStep.self, "second")])
            try await app.flotilla.jobs.waitUntilFinished(job, timeout: .seconds(5))
            try await waitUntil(signals, received: ["listening", "queued", "queued", "queued"])
        }
    }

    /// A step whose lease its instance lost is queued again by a takeover, and that tells
    /// every instance, as no holder claims after it.
    func testAStepTakenOverIsNotified() async throws {
        try await withListener { app, signals in
            let job = try await app.flotilla.jobs.submit(
                kind: "test", title: "slow", by: .system, steps: [.test(IdempotentTestStep.self, "taken over", milliseconds: 60_000)])
            try await waitUntilRunning(job, on: app.db)
            // As if another instance had held it and died: its lease expired.
            try await JobStep.query(on: app.db).filter(\.$job.$id == job)
                .set(\.$leaseOwner, to: UUID()).set(\.$leaseExpiresAt, to: Date().addingTimeInterval(-1)).update()
            try await app.flotilla.jobs.waitUntilFinished(job, timeout: .seconds(10))
            try await waitUntil(signals, received: ["listening", "queued", "released", "ended"])
        }
    }

    /// Runs `body` with an application on PostgreSQL and a listener that has begun listening.
    private func withListener(
        _ settings: [String: String] = [:], _ body: (Application, Signals) async throws -> Void
    ) async throws {
        guard let url = TestApp.postgresURL else {
            throw XCTSkip("LISTEN/NOTIFY is PostgreSQL's; SQLite serves one instance, which wakes itself (scripts/test's PostgreSQL pass)")
        }
        let recorder = Recorder()
        let app = try await TestApp.make(
            ["FLOTILLA_SYNC_SECONDS": "0"].merging(settings) { $1 }, beforeBoot: { $0.flotilla.jobs.registerTestKinds(recorder) })
        let signals = Signals()
        let wakeups = JobWakeups(
            configuration: try SQLPostgresConfiguration(url: url).coreConfiguration,
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: app.logger)
        let listening = Task { await wakeups.run { signal in await signals.add(signal) } }
        defer { listening.cancel() }
        do {
            try await waitUntil(signals, received: ["listening"])
            try await body(app, signals)
            if !app.didShutdown { try await app.asyncShutdown() }
        } catch {
            if !app.didShutdown { try await app.asyncShutdown() }
            throw error
        }
    }

    private func waitUntilRunning(_ job: UUID, on database: any Database) async throws {
        for _ in 0..<200 {
            if try await JobStep.query(on: database).filter(\.$job.$id == job).filter(\.$status == .running).count() == 1 { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        XCTFail("the step of job \(job) did not start")
    }

    /// Waits for exactly these signals, then a little longer to see that no other follows.
    private func waitUntil(_ signals: Signals, received expected: [String]) async throws {
        for _ in 0..<100 where await signals.received.count < expected.count {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(300))
        let received = await signals.received
        XCTAssertEqual(received, expected)
    }
}
