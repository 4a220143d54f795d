import Fluent
import SQLKit

/// On PostgreSQL, other instances are woken only for work that the instance making a change
/// does not take itself (SPEC BEY-8). Migration 016 notified every instance of every step's
/// end, so with three instances each end started four claims (the holder's own and one per
/// listener, the holder's included), queued one behind the other on the claimers' advisory
/// lock, for one free slot; the holder's claim right after its end takes that slot anyway.
/// Now an end written by the holder of a live lease notifies nobody, and a claim that took as
/// many steps as it asked for (its instance is full; more may be runnable) notifies `queued`.
/// A step queued again or ended by a takeover still notifies `ended`. A command running its
/// own job (`onlyJob`) claims nothing else, so the servers fill the slots its steps free at
/// their next poll.
struct NotifyOnlyWorkLeftForOthers: AsyncMigration {
    func prepare(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase, sql.dialect.name == "postgresql" else { return }
        try await sql.raw("DROP TRIGGER job_steps_ended ON job_steps").run()
        try await sql.raw(
            """
            CREATE TRIGGER job_steps_ended AFTER UPDATE OF status ON job_steps
            FOR EACH ROW WHEN (OLD.status = 'running' AND NEW.status <> 'running'
                AND (NEW.status = 'queued' OR OLD.lease_expires_at IS NULL OR OLD.lease_expires_at <= now()))
            EXECUTE FUNCTION flotilla_notify_jobs_ended()
            """
        ).run()
        try await sql.raw(
            """
            CREATE FUNCTION \(unsafeRaw: JobStepRows.claimFunction)(
                wanted bigint, per_connection bigint, claimer uuid, lease_seconds bigint, only_job uuid, claimed_at timestamptz
            ) RETURNS SETOF job_steps LANGUAGE plpgsql AS $$
            DECLARE
                claimed bigint;
            BEGIN
                RETURN QUERY SELECT * FROM flotilla_claim_job_steps(wanted, per_connection, claimer, lease_seconds, only_job, claimed_at);
                GET DIAGNOSTICS claimed = ROW_COUNT;
                IF claimed >= wanted THEN
                    PERFORM pg_notify('\(unsafeRaw: JobWakeups.channel)', '\(unsafeRaw: JobWakeups.Signal.queued.rawValue)');
                END IF;
            END $$
            """
        ).run()
    }

    func revert(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase, sql.dialect.name == "postgresql" else { return }
        try await sql.raw(
            "DROP FUNCTION IF EXISTS \(unsafeRaw: JobStepRows.claimFunction)(bigint, bigint, uuid, bigint, uuid, timestamptz)"
        ).run()
        try await sql.raw("DROP TRIGGER job_steps_ended ON job_steps").run()
        try await sql.raw(
            """
            CREATE TRIGGER job_steps_ended AFTER UPDATE OF status ON job_steps
            FOR EACH ROW WHEN (OLD.status = 'running' AND NEW.status <> 'running')
            EXECUTE FUNCTION flotilla_notify_jobs_ended()
            """
        ).run()
    }
}
