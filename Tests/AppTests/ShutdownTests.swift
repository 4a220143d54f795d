import Fluent
import FluentPostgresDriver
import FluentSQLiteDriver
import XCTVapor

@testable import App

/// At shutdown, running jobs end as interrupted instead of staying "running" until the next
/// start (issue 8, §3).
final class ShutdownTests: XCTestCase {
    func testShutdownEndsRunningJobsAsInterrupted() async throws {
        let app = try await TestApp.make()
        let config = app.flotilla.config
        let slow = StepPlan(action: "test.slow", title: "a slow step", work: { _ in try await Task.sleep(for: .seconds(120)) })
        let queued = StepPlan(action: "test.later", title: "a later step", phase: 1, work: { _ in })
        let jobID: UUID
        do {
            jobID = try await app.flotilla.jobs.submit(kind: "test", title: "slow job", by: .system, steps: [slow, queued])
            try await waitUntilRunning(jobID, on: app.db)
        } catch {
            try await app.asyncShutdown()
            throw error
        }
        let started = ContinuousClock.now
        try await app.asyncShutdown()
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(30), "shutdown waits for the slow step to notice")

        // What the database holds now, read without booting (a boot would mark leftovers itself).
        try await withDatabase(config) { database in
            let found = try await Job.find(jobID, on: database)
            let job = try XCTUnwrap(found)
            XCTAssertEqual(job.status, .interrupted)
            XCTAssertNotNil(job.finishedAt)
            XCTAssertTrue(job.summary.contains("the server shut down"), job.summary)
            let steps = try await JobStep.query(on: database).filter(\.$job.$id == jobID).sort(\.$position).all()
            XCTAssertEqual(steps.map(\.status), [.interrupted, .interrupted])
            for step in steps {
                XCTAssertTrue(step.log.contains("interrupted: the server shut down"), step.log)
                XCTAssertNotNil(step.finishedAt)
            }
        }
    }

    /// `flotilla user list` (or any command but the server) run beside a live server must not
    /// mark that server's running jobs interrupted, nor start a second inventory sync.
    func testACommandBesideTheServerLeavesItsJobsAlone() async throws {
        let server = try await TestApp.make()
        let slow = StepPlan(action: "test.slow", title: "a slow step", work: { _ in try await Task.sleep(for: .seconds(120)) })
        do {
            let jobID = try await server.flotilla.jobs.submit(kind: "test", title: "slow job", by: .system, steps: [slow])
            try await waitUntilRunning(jobID, on: server.db)
            let dataDirectory = server.flotilla.config.dataDirectory
            let command = try await TestApp.make(["FLOTILLA_DATA_DIR": dataDirectory], freshDatabase: false) { app in
                app.environment.arguments = ["flotilla", "user", "list"]
            }
            XCTAssertFalse(command.startsServer)
            try await command.asyncShutdown()
            let found = try await Job.find(jobID, on: server.db)
            XCTAssertEqual(try XCTUnwrap(found).status, .running, "a command beside the server interrupted its job")
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
