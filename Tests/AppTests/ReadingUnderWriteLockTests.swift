import Fluent
import FluentSQLiteDriver
import XCTVapor

@testable import App

/// Reading requests while another connection holds SQLite's write lock for longer than the busy
/// timeout (a rollout's steps writing, another process on the database): the bookkeeping a read
/// does on the side — a token's last use — is best effort and never turns the read into a 500.
final class ReadingUnderWriteLockTests: XCTestCase {
    func testATokenReadsTheJobsWhileAnotherConnectionHoldsTheWriteLock() async throws {
        try XCTSkipIf(TestApp.postgresURL != nil, "SQLite's write lock")
        try await TestApp.run { app in
            guard case .sqlite(let path) = app.flotilla.config.database else { return XCTFail("not SQLite") }
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            let created = try await admin.request(.POST, "/api/v1/tokens", json: API.NewToken(name: "poller"))
            let poller = try TestClient(app)
            poller.bearer = try XCTUnwrap(try admin.decode(API.TokenBody.self, created).token)

            // The holder runs on its own thread, as another process would: the application's
            // waiting writers occupy its blocking threads and must not delay the release.
            let holderThread = NIOThreadPool(numberOfThreads: 1)
            holderThread.start()
            let writer = try await SQLiteConnection.open(
                storage: .file(path: path), threadPool: holderThread, on: app.eventLoopGroup.any())
            _ = try await writer.query("BEGIN IMMEDIATE")
            let answer: TestingHTTPResponse
            do {
                answer = try await poller.request(.GET, "/api/v1/jobs")
            } catch {
                try await writer.close()
                try await holderThread.shutdownGracefully()
                throw error
            }
            _ = try await writer.query("ROLLBACK")
            try await writer.close()
            try await holderThread.shutdownGracefully()
            XCTAssertEqual(answer.status, .ok, answer.body.string)

            let recorded = try await APIToken.query(on: app.db).all()
            XCTAssertEqual(recorded.count, 1)
            XCTAssertNil(recorded.first?.lastUsedAt, "the lock kept the last use from being written")
        }
    }
}
