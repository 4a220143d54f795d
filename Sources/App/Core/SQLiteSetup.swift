import Fluent
import FluentSQLiteDriver
import SQLKit
import Vapor

/// How Flotilla keeps its SQLite database (review finding 13, issue 8 §5).
enum SQLiteSetup {
    /// Creates the data directory (0700) and the database file (0600) before SQLite does,
    /// so no other local account can read sessions, hashes or the audit log. SQLite gives
    /// its `-wal` and `-shm` files the database file's permissions.
    static func prepareFiles(dataDirectory: String, databasePath: String) throws {
        let files = FileManager.default
        for directory in [dataDirectory, (databasePath as NSString).deletingLastPathComponent] where !files.fileExists(atPath: directory) {
            try files.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        if !files.fileExists(atPath: databasePath) {
            guard files.createFile(atPath: databasePath, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw FlotillaError(.unavailable, "cannot create the database file \(databasePath)")
            }
        }
        try files.setAttributes([.posixPermissions: 0o600], ofItemAtPath: databasePath)
    }

    /// WAL lets readers run beside a writer and makes a write one append instead of a journal
    /// file created and deleted; `synchronous = NORMAL` is durable in WAL mode except for the
    /// last transactions at a power loss. The busy timeout replaces SQLiteNIO's default of
    /// waiting forever. Fluent keeps one connection per event loop, so each is set up here, and
    /// so is each sign-in reading connection (`SignInReads`), which may only read.
    static func tune(_ app: Application) async throws {
        guard app.databases.configuration(for: .sqlite) != nil else { return }
        let busyTimeout = SQLQueryString("PRAGMA busy_timeout = \(unsafeRaw: String(app.flotilla.config.sqliteBusyTimeoutMilliseconds))")
        for eventLoop in app.eventLoopGroup.makeIterator() {
            guard let database = app.databases.database(.sqlite, logger: app.logger, on: eventLoop) as? any SQLDatabase else { continue }
            try await database.raw("PRAGMA journal_mode = WAL").run()
            try await database.raw("PRAGMA synchronous = NORMAL").run()
            try await database.raw(busyTimeout).run()
            if let reads = app.signInReads?.database(logger: app.logger, on: eventLoop) as? any SQLDatabase {
                try await reads.raw(busyTimeout).run()
                try await reads.raw("PRAGMA query_only = ON").run()
            }
        }
    }

    /// The application's database: one connection per event loop (FluentSQLiteDriver's only
    /// choice), each waiting at most `databaseConnectionWaitMilliseconds` for its connection.
    static func use(_ app: Application, path: String, config: FlotillaConfig) {
        app.databases.use(
            .sqlite(
                .file(path), connectionPoolTimeout: .milliseconds(Int64(config.databaseConnectionWaitMilliseconds)),
                sqlLogLevel: .trace), as: .sqlite)
        let reads = SignInReads(path: path, eventLoopGroup: app.eventLoopGroup)
        app.storage[SignInReads.Key.self] = reads
        app.lifecycle.use(reads)
    }
}

/// On SQLite, the statement that signs a request in (its session or API token, with the user)
/// runs over a connection of its own per event loop, on threads of its own, that only reads.
///
/// The application's connection of an event loop runs one statement at a time, and a write
/// waits up to the busy timeout for another connection's write lock while holding it (and one
/// of the few blocking threads): under a rollout's writes, a page's sign-in queued behind a few
/// of them waited past the connection wait and answered 500. In WAL mode a reader never waits
/// for the writer, so sign-in answers at once; what the page itself reads still queues on the
/// application's connection and, past the wait, answers 503 (`ErrorRendering`). PostgreSQL
/// pools several connections per event loop and needs none of this.
final class SignInReads: LifecycleHandler, Sendable {
    struct Key: StorageKey {
        typealias Value = SignInReads
    }

    private let threads: NIOThreadPool
    private let databases: Databases

    init(path: String, eventLoopGroup: any EventLoopGroup) {
        threads = NIOThreadPool(numberOfThreads: 2)
        threads.start()
        databases = Databases(threadPool: threads, on: eventLoopGroup)
        databases.use(.sqlite(.file(path), sqlLogLevel: .trace), as: .sqlite)
    }

    func database(logger: Logger, on eventLoop: any EventLoop) -> (any Database)? {
        databases.database(.sqlite, logger: logger, on: eventLoop)
    }

    func shutdownAsync(_ application: Application) async {
        await databases.shutdownAsync()
        try? await threads.shutdownGracefully()
    }
}

extension Application {
    var signInReads: SignInReads? { storage[SignInReads.Key.self] }
}

extension Request {
    /// Where sign-in lookups read: `SignInReads` on SQLite, the request's database otherwise.
    var signInDatabase: any Database {
        application.signInReads?.database(logger: logger, on: eventLoop) ?? db
    }
}
