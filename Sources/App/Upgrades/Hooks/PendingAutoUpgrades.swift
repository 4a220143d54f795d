import Fluent
import Foundation
import SQLKit

/// The durable queue of hooked bursts (`PendingAutoUpgrade`): hooks add to it on any instance,
/// the scheduler takes due rows out. Each change is a conditional statement, so concurrent
/// deliveries and the scheduler on other instances neither lose a commit nor start a burst twice.
struct PendingAutoUpgrades {
    let database: any Database

    /// Adds one commit to the burst of an application in an environment: the burst's quiet
    /// period starts again, and the revision replaces the burst's if it is newer.
    func add(
        applicationID: UUID, environmentID: UUID, hookID: UUID, revision: String, order: Int64, pushedBy: String, quietSeconds: Int
    ) async throws {
        guard let sql = database as? any SQLDatabase else { throw LeaderLease.LeaseError.needsSQL }
        let schema = PendingAutoUpgrade.schema
        // The scheduler may take the row between the insert and the update; then insert again.
        for _ in 0..<3 {
            try await sql.insert(into: schema)
                .columns(
                    "id", "application_id", "environment_id", "hook_id", "revision", "revision_order", "pushed_by", "deliveries",
                    "first_at", "due_at"
                )
                .values(
                    SQLBind(UUID()), SQLBind(applicationID), SQLBind(environmentID), SQLBind(hookID), SQLBind(revision),
                    SQLBind(Int64.min), SQLBind(pushedBy), SQLBind(0), DatabaseClock.expression(on: sql),
                    DatabaseClock.expression(plus: quietSeconds, on: sql)
                )
                .ignoringConflicts(with: ["application_id", "environment_id"])
                .run()
            let touched = try await sql.update(schema)
                .set("deliveries", to: SQLBinaryExpression(SQLColumn("deliveries"), .add, SQLLiteral.numeric("1")))
                .set("due_at", to: DatabaseClock.expression(plus: quietSeconds, on: sql))
                .where("application_id", .equal, SQLBind(applicationID))
                .where("environment_id", .equal, SQLBind(environmentID))
                .returning("id")
                .all()
            guard !touched.isEmpty else { continue }
            try await sql.update(schema)
                .set("revision", to: SQLBind(revision))
                .set("revision_order", to: SQLBind(order))
                .set("pushed_by", to: SQLBind(pushedBy))
                .set("hook_id", to: SQLBind(hookID))
                .where("application_id", .equal, SQLBind(applicationID))
                .where("environment_id", .equal, SQLBind(environmentID))
                .where("revision_order", .lessThan, SQLBind(order))
                .run()
            return
        }
        throw FlotillaError(.conflict, "the auto-upgrade queue is busy; send the hook again")
    }

    /// Bursts whose quiet period has ended, oldest first.
    func due(limit: Int = 50) async throws -> [PendingAutoUpgrade] {
        let now = try await DatabaseClock.now(on: database)
        return try await PendingAutoUpgrade.query(on: database).filter(\.$dueAt <= now).sort(\.$dueAt).limit(limit).all()
    }

    /// Removes a burst once its rollout started, unless a newer commit joined it meanwhile
    /// (then it stays, and rolls out that commit after its own quiet period). Returns whether it went.
    func remove(_ burst: PendingAutoUpgrade) async throws -> Bool {
        guard let sql = database as? any SQLDatabase else { throw LeaderLease.LeaseError.needsSQL }
        let removed = try await sql.delete(from: PendingAutoUpgrade.schema)
            .where("id", .equal, SQLBind(try burst.requireID()))
            .where("deliveries", .equal, SQLBind(burst.deliveries))
            .returning("id")
            .all()
        return !removed.isEmpty
    }

    /// Puts a burst back for later (its environment is busy with another rollout).
    func postpone(_ burst: PendingAutoUpgrade, seconds: Int) async throws {
        guard let sql = database as? any SQLDatabase else { throw LeaderLease.LeaseError.needsSQL }
        try await sql.update(PendingAutoUpgrade.schema)
            .set("due_at", to: DatabaseClock.expression(plus: seconds, on: sql))
            .where("id", .equal, SQLBind(try burst.requireID()))
            .where("deliveries", .equal, SQLBind(burst.deliveries))
            .run()
    }
}
