import Fluent
import Foundation
import SQLKit
import Vapor

/// One instance as the Instances page and `GET /api/v1/instances` show it.
struct InstanceSummary: Content, Equatable {
    enum State: String, Codable, Sendable {
        /// Beating its heartbeat.
        case running
        /// Not beating for longer than `InstanceDirectory.silentAfter`: it died or lost the database.
        case silent
        /// Shut down in order.
        case stopped
    }

    var id: UUID
    var address: String
    var version: String
    var startedAt: Date
    var lastHeartbeatAt: Date
    var stoppedAt: Date?
    var state: State
    /// Job steps this instance holds an unexpired lease on.
    var stepsRunning: Int
    /// Periodic tasks this instance leads (see `PeriodicTasks`).
    var leads: [String]
    /// Whether this is the instance that answered.
    var answering: Bool
}

/// Reads the instances sharing the database.
struct InstanceDirectory {
    /// Three missed heartbeats.
    static let silentAfter: TimeInterval = 15

    let database: any Database
    let answering: UUID

    /// Every instance known, running ones first, then newest first.
    func list() async throws -> [InstanceSummary] {
        let now = try await DatabaseClock.now(on: database)
        let records = try await InstanceRecord.query(on: database).sort(\.$startedAt, .descending).all()
        let leases = try await LeaderLease.query(on: database).filter(\.$expiresAt > now).all()
        let steps = try await runningSteps(now: now)
        let summaries = try records.map { record in
            let id = try record.requireID()
            let state: InstanceSummary.State =
                record.stoppedAt != nil
                ? .stopped : now.timeIntervalSince(record.lastHeartbeatAt) > Self.silentAfter ? .silent : .running
            return InstanceSummary(
                id: id, address: record.address, version: record.version, startedAt: record.startedAt,
                lastHeartbeatAt: record.lastHeartbeatAt, stoppedAt: record.stoppedAt, state: state,
                stepsRunning: steps[id] ?? 0, leads: leases.filter { $0.holder == id }.compactMap(\.id).sorted(),
                answering: id == answering)
        }
        return summaries.filter { $0.state == .running } + summaries.filter { $0.state != .running }
    }

    /// Job steps per lease owner whose lease has not expired.
    private func runningSteps(now: Date) async throws -> [UUID: Int] {
        guard let sql = database as? any SQLDatabase else { return [:] }
        struct Row: Decodable {
            var owner: UUID
            var steps: Int
        }
        let rows = try await sql.select()
            .column(SQLColumn("lease_owner"), as: "owner")
            .column(SQLFunction("COUNT", args: SQLLiteral.all), as: "steps")
            .from(JobStep.schema)
            .where("lease_owner", .isNot, SQLLiteral.null)
            .where("lease_expires_at", .greaterThan, SQLBind(now))
            .groupBy("lease_owner")
            .all(decoding: Row.self)
        return Dictionary(rows.map { ($0.owner, $0.steps) }, uniquingKeysWith: +)
    }
}

extension Request {
    var instances: InstanceDirectory {
        InstanceDirectory(database: db, answering: application.instance.id)
    }
}
