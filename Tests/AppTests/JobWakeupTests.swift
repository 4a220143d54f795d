import FluentPostgresDriver
import NIOPosix
import XCTVapor

@testable import App

/// The notifications other instances wake on (SPEC BEY-8, migration 016), read by a listener
/// of the test's own as another instance would: a job queued, a running step ended, a lease
/// given back at shutdown and a cancel request each send one; a claim sends none. Needs
/// PostgreSQL (scripts/test's second pass).
final class JobWakeupTests: XCTestCase {
    private actor Signals {
        private(set) var received: [String] = []
        func add(_ signal: JobWakeups.Signal?) { received.append(signal?.rawValue ?? "listening") }
    }

    func testQueueChangesAreNotifiedAndClaimsAreNot() async throws {
        guard let url = TestApp.postgresURL else {
            throw XCTSkip("LISTEN/NOTIFY is PostgreSQL's; SQLite serves one instance, which wakes itself (scripts/test's PostgreSQL pass)")
        }
        let recorder = Recorder()
        let app = try await TestApp.make(["FLOTILLA_SYNC_SECONDS": "0"], beforeBoot: { $0.flotilla.jobs.registerTestKinds(recorder) })
        let signals = Signals()
        let wakeups = JobWakeups(
            configuration: try SQLPostgresConfiguration(url: url).coreConfiguration,
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: app.logger)
        let listening = Task { await wakeups.run { signal in await signals.add(signal) } }
        defer { listening.cancel() }
        do {
            try await waitUntil(signals, received: ["listening"])
            let cancelled = try await app.flotilla.jobs.submit(
                kind: "test", title: "slow", by: .system, steps: [.test(IdempotentTestStep.self, "cancelled", milliseconds: 60_000)])
            try await waitUntilRunning(cancelled, on: app.db)
            // The claim that started it woke nobody.
            try await waitUntil(signals, received: ["listening", "queued"])
            try await app.flotilla.jobs.cancel(cancelled, by: .system)
            try await app.flotilla.jobs.waitUntilFinished(cancelled, timeout: .seconds(5))
            try await waitUntil(signals, received: ["listening", "queued", "cancel", "ended"])

            let released = try await app.flotilla.jobs.submit(
                kind: "test", title: "slow", by: .system, steps: [.test(IdempotentTestStep.self, "released", milliseconds: 60_000)])
            try await waitUntilRunning(released, on: app.db)
            try await app.asyncShutdown()
            try await waitUntil(signals, received: ["listening", "queued", "cancel", "ended", "queued", "released"])
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
