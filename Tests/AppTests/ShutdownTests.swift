import Fluent
import FluentPostgresDriver
import FluentSQLiteDriver
import XCTVapor

@testable import App

/// At shutdown an instance gives back the leases of the steps it runs, so that another instance
/// (or this one, started again) resumes them at once by their kinds' rules; nothing is marked
/// failed or interrupted, and a command beside a server leaves the server's jobs alone.
final class ShutdownTests: XCTestCase {
    func testShutdownReleasesLeasesAndTheNextStartResumesTheJob() async throws {
        let recorder = Recorder()
        let first = try await TestApp.make(beforeBoot: { $0.flotilla.jobs.registerTestKinds(recorder) })
        let config = first.flotilla.config
        let jobID: UUID
        do {
            jobID = try await first.flotilla.jobs.submit(
                kind: "test", title: "slow job", by: .system,
                steps: [
                    .test(CheckingTestStep.self, "slow", milliseconds: 120_000),
                    .test(IdempotentTestStep.self, "later", phase: 1),
                ])
            try await waitUntilRunning(jobID, on: first.db)
        } catch {
            try await first.asyncShutdown()
            throw error
        }
        let started = ContinuousClock.now
        try await first.asyncShutdown()
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(10), "shutdown does not wait for the slow step")

        // What the database holds now, read without booting (a boot would take the step over).
        try await withDatabase(config) { database in
            let foundJob = try await Job.find(jobID, on: database)
            let job = try XCTUnwrap(foundJob)
            XCTAssertEqual(job.status, .running, "the job goes on elsewhere")
            let steps = try await JobStep.query(on: database).filter(\.$job.$id == jobID).sort(\.$position).all()
            XCTAssertEqual(steps.map(\.status), [.running, .queued])
            XCTAssertLessThanOrEqual(try XCTUnwrap(steps[0].leaseExpiresAt), Date(), "the lease was given back")
            XCTAssertTrue(steps[0].log.contains("released: this instance shut down"), steps[0].log)
        }

        let second = try await TestApp.make(
            ["FLOTILLA_DATA_DIR": config.dataDirectory], freshDatabase: false,
            beforeBoot: { $0.flotilla.jobs.registerTestKinds(recorder) })
        do {
            try await second.flotilla.jobs.waitUntilFinished(jobID, timeout: .seconds(10))
            let foundJob = try await Job.find(jobID, on: second.db)
            let job = try XCTUnwrap(foundJob)
            XCTAssertEqual(job.status, .succeeded, job.summary)
            let runs = await recorder.items
            XCTAssertEqual(runs, ["slow", "slow rerun", "later"])
        } catch {
            try await second.asyncShutdown()
            throw error
        }
        try await second.asyncShutdown()
    }

    /// `flotilla user list` (or any command but the server) run beside a live server must not
    /// touch that server's running jobs, nor start a second inventory sync.
    func testACommandBesideTheServerLeavesItsJobsAlone() async throws {
        let server = try await TestApp.make(beforeBoot: { $0.flotilla.jobs.registerTestKinds(Recorder()) })
        do {
            let jobID = try await server.flotilla.jobs.submit(
                kind: "test", title: "slow job", by: .system, steps: [.test(IdempotentTestStep.self, "slow", milliseconds: 120_000)])
            try await waitUntilRunning(jobID, on: server.db)
            let dataDirectory = server.flotilla.config.dataDirectory
            let command = try await TestApp.make(["FLOTILLA_DATA_DIR": dataDirectory], freshDatabase: false) { app in
                app.environment.arguments = ["flotilla", "user", "list"]
            }
            XCTAssertFalse(command.startsServer)
            try await command.asyncShutdown()
            let found = try await JobStep.query(on: server.db).filter(\.$job.$id == jobID).first()
            let step = try XCTUnwrap(found)
            XCTAssertEqual(step.status, .running, "a command beside the server touched its job")
            XCTAssertEqual(step.leaseOwner, server.instance.id)
        } catch {
            try await server.asyncShutdown()
            throw error
        }
        try await server.asyncShutdown()
    }

    private func waitUntilRunning(_ jobID: UUID, on database: any Database) async throws {
        for _ in 0..<100 {
            if try await JobStep.query(on: database).filter(\.$job.$id == jobID).filter(\.$status == .running).count() > 0 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("the slow step never started")
    }

    private func withDatabase(_ config: FlotillaConfig, _ body: (any Database) async throws -> Void) async throws {
        let reader = try await Application.make(.testing)
        switch config.database {
        case .sqlite(let path): reader.databases.use(.sqlite(.file(path)), as: .sqlite)
        case .postgres(let url): reader.databases.use(try .postgres(url: url), as: .psql)
        }
        do {
            try await body(reader.db)
        } catch {
            try await reader.asyncShutdown()
            throw error
        }
        try await reader.asyncShutdown()
    }
}
