import Fluent
import Foundation
import SQLKit

/// The one clock that leases and heartbeats are compared against.
///
/// On PostgreSQL it is the database server's: instances on several machines then agree on
/// "now" whatever their own clocks say. SQLite serves one instance, whose clock is the only one.
enum DatabaseClock {
    /// The current time, as the database sees it.
    static func now(on database: any Database) async throws -> Date {
        guard let sql = database as? any SQLDatabase, sql.dialect.name == "postgresql" else { return Date() }
        guard let row = try await sql.raw("SELECT now() AS now").first() else { return Date() }
        return try row.decode(column: "now", as: Date.self)
    }

    /// "now plus `seconds`" as an expression inside a statement, so that a lease is taken or
    /// renewed in one round trip.
    static func expression(plus seconds: Int = 0, on sql: any SQLDatabase) -> any SQLExpression {
        guard sql.dialect.name == "postgresql" else { return SQLBind(Date().addingTimeInterval(TimeInterval(seconds))) }
        return SQLRaw("(now() + make_interval(secs => \(seconds)))")
    }
}
