import Fluent
import FluentSQLiteDriver
import XCTVapor

@testable import App

/// Reading requests while another connection holds SQLite's write lock for longer than the busy
/// timeout (a rollout's steps writing, another process on the database): the bookkeeping a read
/// does on the side — a token's last use — is best effort, signing in never waits behind the
/// application's writes, and a page whose own reads wait too long is a 503, never a 500.
final class ReadingUnderWriteLockTests: XCTestCase {
    /// The last use's write waits 0.3 s for the lock and fails; the page's read, queued behind
    /// it (and maybe a background task's write), gets the connection well within its 2 s.
    func testATokenReadsTheJobsWhileAnotherConnectionHoldsTheWriteLock() async throws {
        try XCTSkipIf(TestApp.postgresURL != nil, "SQLite's write lock")
        try await TestApp.run(adjust: { config in
            config.sqliteBusyTimeoutMilliseconds = 300
            config.databaseConnectionWaitMilliseconds = 2000
        }) { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            let created = try await admin.request(.POST, "/api/v1/tokens", json: API.NewToken(name: "poller"))
            let poller = try TestClient(app)
            poller.bearer = try XCTUnwrap(try admin.decode(API.TokenBody.self, created).token)

            let answer = try await Self.holdingTheWriteLock(of: app) {
                try await poller.request(.GET, "/api/v1/jobs")
            }
            XCTAssertEqual(answer.status, .ok, answer.body.string)

            let recorded = try await APIToken.query(on: app.db).all()
            XCTAssertEqual(recorded.count, 1)
            XCTAssertNil(recorded.first?.lastUsedAt, "the lock kept the last use from being written")
        }
    }

    /// The session is read beside the application's connections: with every one of them held
    /// (as by writes waiting for another connection's lock) longer than a statement may wait for
    /// its connection, a page that needs only the signed-in user answers.
    func testASessionSignsInWhileTheApplicationsConnectionsAreHeld() async throws {
        try XCTSkipIf(TestApp.postgresURL != nil, "SQLite's one connection per event loop")
        try await TestApp.run(
            beforeBoot: { app in
                app.get("signed-in-as") { request in try request.user.username }.requires(.changeOwnPassword)
            },
            adjust: Self.shortConnectionWait
        ) { app in
            let browser = try TestClient(app)
            try await browser.signIn("admin", TestApp.adminPassword)
            app.authenticationVerdicts.forgetAll()

            let answer = try await Self.holdingTheApplicationsConnections(of: app) {
                try await browser.request(.GET, "/signed-in-as")
            }
            XCTAssertEqual(answer.status, .ok, answer.body.string)
            XCTAssertEqual(answer.body.string, "admin")
        }
    }

    /// A page whose own reads wait for a connection longer than allowed says the database is
    /// busy (503), for the browser and the API alike; once the connections are free it answers.
    func testAPageWhoseReadsWaitTooLongIsUnavailableNotAnError() async throws {
        try XCTSkipIf(TestApp.postgresURL != nil, "SQLite's one connection per event loop")
        try await TestApp.run(adjust: Self.shortConnectionWait) { app in
            let browser = try TestClient(app)
            try await browser.signIn("admin", TestApp.adminPassword)
            app.authenticationVerdicts.forgetAll()
            app.keptAnswers.forgetAll()

            let (api, page) = try await Self.holdingTheApplicationsConnections(of: app) {
                (try await browser.request(.GET, "/api/v1/jobs"), try await browser.request(.GET, "/jobs"))
            }
            XCTAssertEqual(api.status, .serviceUnavailable, api.body.string)
            XCTAssertTrue(api.body.string.contains("the database is busy"), api.body.string)
            XCTAssertEqual(page.status, .serviceUnavailable)
            XCTAssertTrue(page.body.string.contains("the database is busy"))

            let afterwards = try await browser.request(.GET, "/api/v1/jobs")
            XCTAssertEqual(afterwards.status, .ok, afterwards.body.string)
        }
    }

    /// A statement waits at most 0.3 s for its event loop's connection (10 s in production).
    private static func shortConnectionWait(_ config: inout FlotillaConfig) {
        config.databaseConnectionWaitMilliseconds = 300
    }

    /// Runs `body` while every event loop's connection of the application is taken, as writes
    /// waiting up to the busy timeout for another connection's write lock take them.
    private static func holdingTheApplicationsConnections<Result>(
        of app: Application, _ body: () async throws -> Result
    ) async throws -> Result {
        var releases: [EventLoopPromise<Void>] = []
        var holds: [EventLoopFuture<Void>] = []
        for eventLoop in app.eventLoopGroup.makeIterator() {
            guard let database = app.databases.database(.sqlite, logger: app.logger, on: eventLoop) else {
                throw FlotillaError(.unavailable, "not SQLite")
            }
            let taken = eventLoop.makePromise(of: Void.self)
            let release = eventLoop.makePromise(of: Void.self)
            releases.append(release)
            holds.append(
                database.withConnection { _ in
                    taken.succeed()
                    return release.futureResult
                })
            try await taken.futureResult.get()
        }
        let result: Result
        do {
            result = try await body()
        } catch {
            for release in releases { release.succeed() }
            throw error
        }
        for release in releases { release.succeed() }
        for hold in holds { try await hold.get() }
        return result
    }

    /// Runs `body` while a connection of its own, on a thread of its own as another process
    /// would be, holds the database's write lock: the application's waiting writers occupy its
    /// blocking threads and must not delay the release.
    private static func holdingTheWriteLock<Result>(of app: Application, _ body: () async throws -> Result) async throws -> Result {
        guard case .sqlite(let path) = app.flotilla.config.database else { throw FlotillaError(.unavailable, "not SQLite") }
        let holderThread = NIOThreadPool(numberOfThreads: 1)
        holderThread.start()
        let writer = try await SQLiteConnection.open(storage: .file(path: path), threadPool: holderThread, on: app.eventLoopGroup.any())
        let result: Result
        do {
            _ = try await writer.query("BEGIN IMMEDIATE")
            result = try await body()
        } catch {
            try await writer.close()
            try await holderThread.shutdownGracefully()
            throw error
        }
        _ = try await writer.query("ROLLBACK")
        try await writer.close()
        try await holderThread.shutdownGracefully()
        return result
    }
}
