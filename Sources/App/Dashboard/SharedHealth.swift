import Fluent
import SQLKit
import Vapor

/// Every VM's current health in the database (`vm_health_states`): the instance leading the sweep
/// writes each change, the other instances read what changed since they last looked.
struct SharedHealth {
    static let schema = "vm_health_states"
    /// How far back a read looks before the newest change it saw: changes written with a slightly
    /// earlier time by a leader that had just taken over are not missed (reading one twice is harmless).
    static let overlap: TimeInterval = 5

    let database: any Database

    /// A VM's health as the leader worked it out.
    struct Verdict: Sendable, Equatable {
        var health: VMHealth
        var reason: String
    }

    /// Upserts each change's verdict; a VM deleted meanwhile is skipped.
    func write(_ changes: [FleetStatus.Change], now: Date = Date()) async throws {
        guard let sql = database as? any SQLDatabase, !changes.isEmpty else { return }
        func upsert(_ batch: some Collection<FleetStatus.Change>) async throws {
            var insert = sql.insert(into: Self.schema).columns("vm_id", "health", "reason", "since", "updated_at")
            for change in batch {
                insert = insert.values(
                    SQLBind(change.vmID), SQLBind(change.health.rawValue), SQLBind(change.reason), SQLBind(change.at), SQLBind(now))
            }
            try await insert.onConflict(with: ["vm_id"]) { conflict in
                conflict.set(excludedValueOf: "health").set(excludedValueOf: "reason").set(excludedValueOf: "since")
                    .set(excludedValueOf: "updated_at")
            }.run()
        }
        // The last change of a VM within the batch wins; a statement holds at most 500 rows.
        let latest = Dictionary(changes.map { ($0.vmID, $0) }, uniquingKeysWith: { _, later in later })
        let values = Array(latest.values)
        for start in stride(from: 0, to: values.count, by: 500) {
            let batch = values[start..<min(start + 500, values.count)]
            do {
                try await upsert(batch)
            } catch {
                // A VM deleted a moment ago has no row to point to: the others are written one by one.
                for change in batch { try? await upsert([change]) }
            }
        }
    }

    /// The verdicts written at or after `since` (all with nil), and the newest write time seen.
    func read(since: Date?) async throws -> (verdicts: [UUID: Verdict], newest: Date?) {
        guard let sql = database as? any SQLDatabase else { return ([:], since) }
        var select = sql.select().columns("vm_id", "health", "reason", "updated_at").from(Self.schema)
        if let since {
            select = select.where("updated_at", .greaterThanOrEqual, since.addingTimeInterval(-Self.overlap))
        }
        var verdicts: [UUID: Verdict] = [:]
        var newest = since
        for row in try await select.all() {
            let id = try row.decode(column: "vm_id", as: UUID.self)
            let updated = try row.decode(column: "updated_at", as: Date.self)
            newest = max(newest ?? updated, updated)
            guard let health = VMHealth(rawValue: try row.decode(column: "health", as: String.self)) else { continue }
            verdicts[id] = Verdict(health: health, reason: try row.decode(column: "reason", as: String.self))
        }
        return (verdicts, newest)
    }
}
