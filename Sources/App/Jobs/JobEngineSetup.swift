import FluentPostgresDriver
import Vapor

extension DatabaseID {
    /// The job engine's own pool on PostgreSQL, for its loop's claims (see `JobEngine`).
    static let jobClaims = DatabaseID(string: "psql-job-claims")
}

extension JobEngine {
    /// The application's engine, running on one of the application's event loops. On
    /// PostgreSQL its loop claims over a connection of that event loop that running steps'
    /// work and requests never hold (a pool of one connection per event loop, of which it uses
    /// one) and listens for the other instances' changes; on SQLite, the one instance shares
    /// the application's database and wakes itself.
    static func make(for app: Application, config: FlotillaConfig, operations: VMOperations) throws -> JobEngine {
        var claims: (any Database)?
        var wakeups: JobWakeups?
        let loop = app.eventLoopGroup.next()
        if case .postgres(let url) = config.database {
            app.databases.use(try .postgres(url: url, maxConnectionsPerEventLoop: 1, sqlLogLevel: .trace), as: .jobClaims, isDefault: false)
            claims = app.databases.database(.jobClaims, logger: app.logger, on: loop)
            wakeups = JobWakeups(
                configuration: try SQLPostgresConfiguration(url: url).coreConfiguration, eventLoop: loop, logger: app.logger)
        }
        return JobEngine(
            database: app.db, claims: claims, eventLoop: loop, wakeups: wakeups, logger: app.logger, operations: operations,
            concurrency: config.jobConcurrency, perConnection: config.jobConcurrencyPerConnection,
            afterStepWork: { [kept = app.keptAnswers] in kept.forgetAll() })
    }
}
