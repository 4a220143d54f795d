import Fluent
import Foundation
import SQLKit
import Vapor

/// The statements that claim, lease, release and end job steps (SPEC BEY-8). Each write is one
/// statement conditioned on the row's state, so instances sharing the database never undo each
/// other's work: a step is claimed once (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one
/// writer and serves one instance) and only the holder of its lease records how it ended.
/// Leases are set and compared on the database's clock (`DatabaseClock`), so instances on
/// machines whose clocks differ agree on which have expired.
struct JobStepRows: Sendable {
    let sql: any SQLDatabase

    init(_ database: any Database) throws {
        guard let sql = database as? any SQLDatabase else { throw FlotillaError(.unavailable, "jobs need an SQL database") }
        self.sql = sql
    }

    var isPostgres: Bool { sql.dialect.name == "postgresql" }

    /// A claimed step: everything needed to run it.
    struct Claimed: Decodable, Sendable {
        var id: UUID
        var jobID: UUID
        var kind: String?
        var parameters: String?
        var title: String
        var vmName: String?
        var vmRole: String?
        var phase: Int
        var attempts: Int

        enum CodingKeys: String, CodingKey {
            case id, kind, parameters, title, phase, attempts
            case jobID = "job_id"
            case vmName = "vm_name"
            case vmRole = "vm_role"
        }
    }

    /// Claims up to `limit` runnable steps for `owner`: queued, of a job not asked to stop, all
    /// earlier phases of the job succeeded, oldest job first, and no vSphere connection above
    /// `perConnection` running steps counted over every instance.
    ///
    /// One statement picks, limits and takes the steps. On PostgreSQL it is one round trip to
    /// `claimFunction` (migration 024) around `flotilla_claim_job_steps` (migration 018), which
    /// takes a transaction-level advisory lock first, so claimers of all instances take turns,
    /// the statement's snapshot holds every step claimed before it and the per-connection count
    /// is exact (steps that end meanwhile only make it too cautious until the next round), then
    /// claims with `FOR UPDATE SKIP LOCKED`; a claim that got all `limit` steps wakes the other
    /// instances, as more may be runnable. SQLite runs the same statement here: one writer, one
    /// instance.
    func claim(limit: Int, perConnection: Int, owner: UUID, lease: TimeInterval, onlyJob: UUID?) async throws -> [Claimed] {
        guard limit > 0 else { return [] }
        if isPostgres {
            return try await sql.raw(
                """
                SELECT id, job_id, kind, parameters, title, vm_name, vm_role, phase, attempts FROM \(unsafeRaw: Self.claimFunction)(
                \(bind: limit), \(bind: perConnection), \(bind: owner), \(bind: Int(lease)), CAST(\(bind: onlyJob) AS uuid),
                \(bind: Date()))
                """
            ).all(decoding: Claimed.self)
        }
        var candidates = SQLQueryString(
            """
            SELECT s.id, s.connection_id, j.created_at, s.position FROM job_steps s JOIN jobs j ON j.id = s.job_id
            WHERE s.status = \(bind: JobStatus.queued.rawValue) AND j.cancel_requested = \(bind: false)
            AND CASE WHEN s.phase = 0 THEN \(bind: true) ELSE NOT EXISTS (
                SELECT 1 FROM job_steps e WHERE e.job_id = s.job_id AND e.phase < s.phase
                AND e.status <> \(bind: JobStatus.succeeded.rawValue)) END
            AND (s.connection_id IS NULL OR s.connection_id NOT IN (SELECT connection_id FROM running WHERE n >= \(bind: perConnection)))
            """)
        if let onlyJob { candidates.appendInterpolation(" AND s.job_id = \(bind: onlyJob)" as SQLQueryString) }
        candidates.appendInterpolation(" ORDER BY j.created_at, s.position LIMIT \(bind: limit)" as SQLQueryString)
        return try await sql.raw(
            """
            UPDATE job_steps SET status = \(bind: JobStatus.running.rawValue), lease_owner = \(bind: owner),
            lease_expires_at = \(DatabaseClock.expression(plus: Int(lease), on: sql)), attempts = attempts + 1,
            started_at = COALESCE(started_at, \(bind: Date()))
            WHERE id IN (
                WITH running AS (
                    SELECT connection_id, COUNT(*) AS n FROM job_steps
                    WHERE status = \(bind: JobStatus.running.rawValue) AND connection_id IS NOT NULL GROUP BY connection_id
                ), candidates AS (\(candidates)), ranked AS (
                    SELECT c.id, c.connection_id, COALESCE(r.n, 0) + ROW_NUMBER() OVER (
                        PARTITION BY c.connection_id ORDER BY c.created_at, c.position) AS taken
                    FROM candidates c LEFT JOIN running r ON r.connection_id = c.connection_id
                )
                SELECT id FROM ranked WHERE connection_id IS NULL OR taken <= \(bind: perConnection)
            )
            RETURNING id, job_id, kind, parameters, title, vm_name, vm_role, phase, attempts
            """
        ).all(decoding: Claimed.self)
    }

    /// The PostgreSQL function that claims (migration 024): `flotilla_claim_job_steps`, then a
    /// `queued` notification when it took all it was asked for.
    static let claimFunction = "flotilla_claim_job_steps_telling_others"

    /// Claimers of every instance take turns on this PostgreSQL advisory lock (taken by
    /// `flotilla_claim_job_steps`, migration 018; never change it).
    static let claimLock: Int64 = 0x666C_6F74_696C_6C61

    /// Marks the jobs of newly claimed steps running (those still queued).
    func markJobsRunning(_ jobs: Set<UUID>) async throws {
        guard !jobs.isEmpty else { return }
        try await sql.raw(
            """
            UPDATE jobs SET status = \(bind: JobStatus.running.rawValue), started_at = \(bind: Date())
            WHERE id IN (\(binds: Array(jobs))) AND status = \(bind: JobStatus.queued.rawValue)
            """
        ).run()
    }

    /// Extends the leases `owner` holds on `steps`.
    func renew(_ steps: [UUID], owner: UUID, lease: TimeInterval) async throws {
        guard !steps.isEmpty else { return }
        try await sql.raw(
            """
            UPDATE job_steps SET lease_expires_at = \(DatabaseClock.expression(plus: Int(lease), on: sql))
            WHERE id IN (\(binds: steps)) AND lease_owner = \(bind: owner) AND status = \(bind: JobStatus.running.rawValue)
            """
        ).run()
    }

    /// What the running instance must react to: the job's cancel flag, and whether the step is
    /// still its own (a stalled instance may have lost it to a takeover).
    struct Watch: Decodable, Sendable {
        var id: UUID
        var status: String
        var lease_owner: UUID?
        var cancel_requested: Bool
    }

    func watch(_ steps: [UUID]) async throws -> [Watch] {
        guard !steps.isEmpty else { return [] }
        return try await sql.raw(
            """
            SELECT s.id, s.status, s.lease_owner, j.cancel_requested FROM job_steps s JOIN jobs j ON j.id = s.job_id
            WHERE s.id IN (\(binds: steps))
            """
        ).all(decoding: Watch.self)
    }

    /// A running step whose lease expired: its instance died or shut down.
    struct Orphan: Decodable, Sendable {
        var id: UUID
        var job_id: UUID
        var kind: String?
        var phase: Int
        var lease_owner: UUID?
        var cancel_requested: Bool
    }

    /// How a taken-over step continues: queued again (with a line saying why), or ended with a
    /// status and a reason (for `needs-attention`, the reason a person reads).
    enum Takeover: Sendable {
        case requeue(String)
        case end(JobStatus, String)
    }

    /// What a takeover did: steps queued again (to be claimed), and steps ended, whose jobs may
    /// now be finished.
    struct TakenOver: Sendable {
        var requeued = 0
        var ended: [Orphan] = []
    }

    /// Takes over running steps whose lease expired, each as `decide` says (from its kind's
    /// rerun rule).
    func takeOverExpired(except ours: [UUID], decide: @escaping @Sendable (Orphan) -> Takeover) async throws -> TakenOver {
        let now = Date()
        let probe = try await sql.raw(
            """
            SELECT id FROM job_steps WHERE status = \(bind: JobStatus.running.rawValue)
            AND (lease_expires_at IS NULL OR lease_expires_at < \(DatabaseClock.expression(on: sql))) LIMIT 1
            """
        ).all()
        guard !probe.isEmpty else { return TakenOver() }
        let postgres = isPostgres
        return try await transaction { sql in
            var query = SQLQueryString(
                """
                SELECT s.id, s.job_id, s.kind, s.phase, s.lease_owner, j.cancel_requested FROM job_steps s
                JOIN jobs j ON j.id = s.job_id WHERE s.status = \(bind: JobStatus.running.rawValue)
                AND (s.lease_expires_at IS NULL OR s.lease_expires_at < \(DatabaseClock.expression(on: sql))) LIMIT 200
                """)
            if postgres { query.appendInterpolation(" FOR UPDATE OF s SKIP LOCKED" as SQLQueryString) }
            var takenOver = TakenOver()
            for orphan in try await sql.raw(query).all(decoding: Orphan.self) where !ours.contains(orphan.id) {
                let line = Self.logLine(
                    "its instance \(orphan.lease_owner.map { String($0.uuidString.prefix(8)) } ?? "(unknown)") stopped running it")
                switch decide(orphan) {
                case .requeue(let how):
                    try await sql.raw(
                        """
                        UPDATE job_steps SET status = \(bind: JobStatus.queued.rawValue), lease_expires_at = NULL,
                        log = log || \(bind: line + Self.logLine(how)) WHERE id = \(bind: orphan.id)
                        """
                    ).run()
                    takenOver.requeued += 1
                case .end(let status, let reason):
                    let ending = status == .needsAttention ? "needs attention: \(reason)" : reason
                    try await sql.raw(
                        """
                        UPDATE job_steps SET status = \(bind: status.rawValue), lease_expires_at = NULL,
                        finished_at = \(bind: now), attention_reason = \(bind: status == .needsAttention ? reason : nil),
                        log = log || \(bind: line + Self.logLine(ending)) WHERE id = \(bind: orphan.id)
                        """
                    ).run()
                    takenOver.ended.append(orphan)
                }
            }
            return takenOver
        }
    }

    /// Jobs asked to stop that still have queued steps (the request set the flag, and the
    /// instance that took it stopped before ending them).
    func cancelledJobsWithQueuedSteps() async throws -> [UUID] {
        struct Row: Decodable { var job_id: UUID }
        return try await sql.raw(
            """
            SELECT DISTINCT s.job_id FROM job_steps s JOIN jobs j ON j.id = s.job_id
            WHERE s.status = \(bind: JobStatus.queued.rawValue) AND j.cancel_requested = \(bind: true)
            """
        ).all(decoding: Row.self).map(\.job_id)
    }

    /// Records how a step ended, if `owner` still holds it; false when it no longer does.
    func end(_ step: UUID, as status: JobStatus, line: String, attentionReason: String? = nil, owner: UUID) async throws -> Bool {
        try await !sql.raw(
            """
            UPDATE job_steps SET status = \(bind: status.rawValue), finished_at = \(bind: Date()), lease_expires_at = NULL,
            attention_reason = \(bind: attentionReason), log = log || \(bind: Self.logLine(line))
            WHERE id = \(bind: step) AND lease_owner = \(bind: owner) AND status = \(bind: JobStatus.running.rawValue)
            RETURNING id
            """
        ).all().isEmpty
    }

    /// Gives a step back at shutdown: its lease is made expired at once, so that another
    /// instance (or this one when it starts again) takes it over by its kind's rule.
    func release(_ step: UUID, owner: UUID, reason: String) async throws {
        try await sql.raw(
            """
            UPDATE job_steps SET lease_expires_at = \(DatabaseClock.expression(plus: -1, on: sql)), log = log || \(bind: Self.logLine(reason))
            WHERE id = \(bind: step) AND lease_owner = \(bind: owner) AND status = \(bind: JobStatus.running.rawValue)
            """
        ).run()
    }

    /// Counts another attempt of a step being retried.
    func countAttempt(_ step: UUID, line: String) async throws {
        try await sql.raw(
            "UPDATE job_steps SET attempts = attempts + 1, log = log || \(bind: Self.logLine(line)) WHERE id = \(bind: step)"
        ).run()
    }

    /// Ends the queued steps of a job that can no longer start (cancelled, or after an earlier
    /// phase failed).
    func endQueued(of job: UUID, afterPhase phase: Int? = nil, as status: JobStatus, line: String) async throws {
        var query = SQLQueryString(
            """
            UPDATE job_steps SET status = \(bind: status.rawValue), finished_at = \(bind: Date()),
            log = log || \(bind: Self.logLine(line)) WHERE job_id = \(bind: job) AND status = \(bind: JobStatus.queued.rawValue)
            """)
        if let phase { query.appendInterpolation(" AND phase > \(bind: phase)" as SQLQueryString) }
        try await sql.raw(query).run()
    }

    /// Ends the job when none of its steps is queued or running any more: its status and
    /// summary follow from its steps. Whichever instance ends the last step does it; the
    /// condition on the job's status makes a second attempt a no-op.
    func finishJobIfDone(_ job: UUID) async throws {
        struct Count: Decodable {
            var status: String
            var n: Int
        }
        var counts: [JobStatus: Int] = [:]
        for row in try await sql.raw("SELECT status, COUNT(*) AS n FROM job_steps WHERE job_id = \(bind: job) GROUP BY status")
            .all(decoding: Count.self)
        {
            counts[JobStatus(rawValue: row.status) ?? .failed, default: 0] += row.n
        }
        guard counts[.queued, default: 0] + counts[.running, default: 0] == 0 else { return }
        let total = counts.values.reduce(0, +)
        let succeeded = counts[.succeeded, default: 0]
        let failed = counts[.failed, default: 0]
        let cancelled = counts[.cancelled, default: 0] + counts[.interrupted, default: 0]
        let attention = counts[.needsAttention, default: 0]
        let status: JobStatus =
            attention > 0 ? .needsAttention : failed > 0 ? .failed : cancelled > 0 ? .cancelled : .succeeded
        let summary =
            "\(succeeded) of \(total) step\(total == 1 ? "" : "s") succeeded"
            + (failed > 0 ? ", \(failed) failed" : "")
            + (cancelled > 0 ? ", \(cancelled) cancelled" : "")
            + (attention > 0 ? ", \(attention) need\(attention == 1 ? "s" : "") attention" : "")
        try await sql.raw(
            """
            UPDATE jobs SET status = \(bind: status.rawValue), summary = \(bind: summary), finished_at = \(bind: Date())
            WHERE id = \(bind: job) AND status IN (\(bind: JobStatus.queued.rawValue), \(bind: JobStatus.running.rawValue))
            """
        ).run()
    }

    /// Adds one line to a step's log without reading it first.
    static func appendLog(_ step: UUID, _ line: String, on database: any Database, logger: Logger) async {
        do {
            try await JobStepRows(database).sql.raw(
                "UPDATE job_steps SET log = log || \(bind: logLine(line)) WHERE id = \(bind: step)"
            ).run()
        } catch {
            logger.warning("could not write the log of step \(step): \(String(reflecting: error))")
        }
    }

    /// One timestamped (UTC) log line.
    static func logLine(_ line: String) -> String {
        "[\(DisplayTime(timeZone: .gmt).string(Date()))] \(line)\n"
    }

    private func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        guard let database = sql as? any Database else { return try await body(sql) }
        return try await database.transaction { transaction in
            guard let sql = transaction as? any SQLDatabase else { throw FlotillaError(.unavailable, "jobs need an SQL database") }
            return try await body(sql)
        }
    }
}
