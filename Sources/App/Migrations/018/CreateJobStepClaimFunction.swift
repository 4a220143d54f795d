import Fluent
import SQLKit

/// On PostgreSQL, a claim is one round trip (SPEC BEY-8): this function takes the claimers'
/// advisory lock (`JobStepRows.claimLock`) and then claims, where a transaction around the two
/// statements took four round trips on the path of every step. The claim runs as its own
/// statement after the lock is held, so its snapshot holds every step claimed before it and
/// the per-connection count stays exact. It returns the claimed rows. SQLite claims with the
/// same statement from `JobStepRows.claim`, without lock or function (one writer, one instance).
struct CreateJobStepClaimFunction: AsyncMigration {
    func prepare(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase, sql.dialect.name == "postgresql" else { return }
        let queued = JobStatus.queued.rawValue
        let running = JobStatus.running.rawValue
        let succeeded = JobStatus.succeeded.rawValue
        try await sql.raw(
            """
            CREATE FUNCTION flotilla_claim_job_steps(
                wanted bigint, per_connection bigint, claimer uuid, lease_seconds bigint, only_job uuid, claimed_at timestamptz
            ) RETURNS SETOF job_steps LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_advisory_xact_lock(\(unsafeRaw: String(JobStepRows.claimLock)));
                RETURN QUERY
                UPDATE job_steps SET status = '\(unsafeRaw: running)', lease_owner = claimer,
                lease_expires_at = now() + make_interval(secs => lease_seconds), attempts = attempts + 1,
                started_at = COALESCE(started_at, claimed_at)
                WHERE id IN (
                    WITH running AS (
                        SELECT connection_id, COUNT(*) AS n FROM job_steps
                        WHERE status = '\(unsafeRaw: running)' AND connection_id IS NOT NULL GROUP BY connection_id
                    ), candidates AS (
                        SELECT s.id, s.connection_id, j.created_at, s.position FROM job_steps s JOIN jobs j ON j.id = s.job_id
                        WHERE s.status = '\(unsafeRaw: queued)' AND NOT j.cancel_requested
                        AND CASE WHEN s.phase = 0 THEN true ELSE NOT EXISTS (
                            SELECT 1 FROM job_steps e WHERE e.job_id = s.job_id AND e.phase < s.phase
                            AND e.status <> '\(unsafeRaw: succeeded)') END
                        AND (s.connection_id IS NULL
                            OR s.connection_id NOT IN (SELECT connection_id FROM running WHERE n >= per_connection))
                        AND (only_job IS NULL OR s.job_id = only_job)
                        ORDER BY j.created_at, s.position LIMIT wanted FOR UPDATE OF s SKIP LOCKED
                    ), ranked AS (
                        SELECT c.id, c.connection_id, COALESCE(r.n, 0) + ROW_NUMBER() OVER (
                            PARTITION BY c.connection_id ORDER BY c.created_at, c.position) AS taken
                        FROM candidates c LEFT JOIN running r ON r.connection_id = c.connection_id
                    )
                    SELECT ranked.id FROM ranked WHERE ranked.connection_id IS NULL OR ranked.taken <= per_connection
                )
                RETURNING job_steps.*;
            END $$
            """
        ).run()
    }

    func revert(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase, sql.dialect.name == "postgresql" else { return }
        try await sql.raw("DROP FUNCTION IF EXISTS flotilla_claim_job_steps(bigint, bigint, uuid, bigint, uuid, timestamptz)").run()
    }
}
