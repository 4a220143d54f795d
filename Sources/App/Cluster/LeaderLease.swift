import Fluent
import Foundation
import SQLKit

/// Which instance leads a periodic task, until when (see `PeriodicTasks`).
///
/// A lease row rather than a PostgreSQL advisory lock: a session-level advisory lock is bound
/// to one pooled connection (a pool that recycles it silently drops or keeps the lock), it does
/// not exist on SQLite, and it cannot be read by other instances to show who leads. A row with
/// an expiry is taken and renewed by one conditional UPDATE on both databases, is visible on
/// the Instances page, and lapses by itself when its holder dies.
final class LeaderLease: Model, @unchecked Sendable {
    static let schema = "leader_leases"

    /// How long a lease lasts without renewal; a dead leader is replaced within this plus one
    /// renewal interval.
    static let durationSeconds = 15
    /// How often the holder renews and the others try to take over.
    static let renewInterval: Duration = .seconds(5)

    @ID(custom: "task", generatedBy: .user) var id: String?
    @OptionalField(key: "holder") var holder: UUID?
    @Field(key: "expires_at") var expiresAt: Date
    /// When the current holder took the lease; renewals keep it.
    @OptionalField(key: "acquired_at") var acquiredAt: Date?

    init() {}

    /// Takes the lease for `task` if it is free or expired, or renews it if `holder` has it.
    /// Returns whether `holder` now holds it. One statement, so two instances cannot both win.
    static func takeOrRenew(_ task: String, holder: UUID, on database: any Database) async throws -> Bool {
        guard let sql = database as? any SQLDatabase else { throw LeaseError.needsSQL }
        try await sql.insert(into: schema)
            .columns("task", "expires_at")
            .values(SQLBind(task), SQLBind(Date(timeIntervalSince1970: 0)))
            .ignoringConflicts(with: "task")
            .run()
        let now = DatabaseClock.expression(on: sql)
        let rows = try await sql.update(schema)
            .set("acquired_at", to: SQLCaseWhen(holderIs: holder, keep: SQLColumn("acquired_at"), otherwise: now))
            .set("holder", to: SQLBind(holder))
            .set("expires_at", to: DatabaseClock.expression(plus: durationSeconds, on: sql))
            .where("task", .equal, SQLBind(task))
            .where { group in
                group.where("expires_at", .lessThan, now).orWhere("holder", .equal, SQLBind(holder))
            }
            .returning("task")
            .all()
        return !rows.isEmpty
    }

    /// Gives up every lease `holder` has, so that another instance leads at once.
    static func releaseAll(heldBy holder: UUID, on database: any Database) async throws {
        try await LeaderLease.query(on: database).filter(\.$holder == holder)
            .set(\.$holder, to: nil).set(\.$expiresAt, to: Date(timeIntervalSince1970: 0)).update()
    }

    /// Gives up one lease if `holder` has it.
    static func release(_ task: String, heldBy holder: UUID, on database: any Database) async throws {
        try await LeaderLease.query(on: database).filter(\.$id == task).filter(\.$holder == holder)
            .set(\.$holder, to: nil).set(\.$expiresAt, to: Date(timeIntervalSince1970: 0)).update()
    }

    enum LeaseError: Error, CustomStringConvertible {
        case needsSQL
        var description: String { "leader leases need an SQL database" }
    }
}

/// `CASE WHEN holder = <me> THEN <keep> ELSE <otherwise> END`: a renewal keeps the time the
/// lease was taken, a takeover sets it.
private struct SQLCaseWhen: SQLExpression {
    let holderIs: UUID
    let keep: any SQLExpression
    let otherwise: any SQLExpression

    func serialize(to serializer: inout SQLSerializer) {
        serializer.write("CASE WHEN ")
        SQLColumn("holder").serialize(to: &serializer)
        serializer.write(" = ")
        SQLBind(holderIs).serialize(to: &serializer)
        serializer.write(" THEN ")
        keep.serialize(to: &serializer)
        serializer.write(" ELSE ")
        otherwise.serialize(to: &serializer)
        serializer.write(" END")
    }
}
