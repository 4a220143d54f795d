import Fluent
import Foundation
import SQLKit
import Vapor

/// Keeps this instance's row in `instances` current while it serves, so that the others (and
/// the Instances page) can tell a live instance from a dead one.
struct InstanceHeartbeat: Sendable {
    static let interval: Duration = .seconds(5)
    /// Rows of instances that have not beaten for this long are removed at each start.
    static let forgetAfter: TimeInterval = 7 * 86_400

    let identity: InstanceIdentity
    let database: any Database
    let logger: Logger

    /// Records this start and forgets instances long gone.
    func announce() async throws {
        let now = try await DatabaseClock.now(on: database)
        try await InstanceRecord.query(on: database)
            .filter(\.$lastHeartbeatAt < now.addingTimeInterval(-Self.forgetAfter)).delete()
        try await InstanceRecord(identity: identity, now: now).create(on: database)
    }

    /// Beats until cancelled; a failed beat is logged and retried at the next one.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.interval)
            guard !Task.isCancelled else { return }
            do {
                try await beat()
            } catch {
                logger.warning("instance heartbeat failed: \(FlotillaError.describe(error))")
            }
        }
    }

    func beat() async throws {
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.update(InstanceRecord.schema)
            .set("last_heartbeat_at", to: DatabaseClock.expression(on: sql))
            .where("id", .equal, SQLBind(identity.id))
            .run()
    }

    /// Marks the orderly end of this instance.
    func markStopped() async {
        do {
            let now = try await DatabaseClock.now(on: database)
            try await InstanceRecord.query(on: database).filter(\.$id == identity.id)
                .set(\.$stoppedAt, to: now).set(\.$lastHeartbeatAt, to: now).update()
        } catch {
            logger.warning("could not mark this instance stopped: \(FlotillaError.describe(error))")
        }
    }
}
