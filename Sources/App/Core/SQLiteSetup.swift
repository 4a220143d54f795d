import Fluent
import FluentSQLiteDriver
import SQLKit
import Vapor

/// How Flotilla keeps its SQLite database (review finding 13, issue 8 §5).
enum SQLiteSetup {
    /// How long a connection waits for another's write lock before the query fails.
    static let busyTimeoutMilliseconds = 5000

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
    /// waiting forever. Fluent keeps one connection per event loop, so each is set up here.
    static func tune(_ app: Application) async throws {
        guard app.databases.configuration(for: .sqlite) != nil else { return }
        for eventLoop in app.eventLoopGroup.makeIterator() {
            guard let database = app.databases.database(.sqlite, logger: app.logger, on: eventLoop) as? any SQLDatabase else { continue }
            try await database.raw("PRAGMA journal_mode = WAL").run()
            try await database.raw("PRAGMA synchronous = NORMAL").run()
            try await database.raw(SQLQueryString("PRAGMA busy_timeout = \(unsafeRaw: String(busyTimeoutMilliseconds))")).run()
        }
    }
}
