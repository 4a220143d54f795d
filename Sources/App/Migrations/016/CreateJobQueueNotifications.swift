import Fluent
import SQLKit

/// On PostgreSQL, every change to the job queue that another instance must react to sends a
/// notification on `JobWakeups.channel` (SPEC BEY-8), whichever code made it: steps queued,
/// a running step ended or queued again (a slot of its vSphere connection is free, or the next
/// phase may start), a lease given back at shutdown, a job asked to stop. Instances listen and
/// act at once instead of at their next poll. Claims and lease renewals send nothing, so the
/// busiest statements wake nobody. Notifications are delivered at commit, one per payload and
/// transaction. SQLite serves one instance, which wakes itself.
struct CreateJobQueueNotifications: AsyncMigration {
    func prepare(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase, sql.dialect.name == "postgresql" else { return }
        for payload in JobWakeups.Signal.allCases {
            try await sql.raw(
                """
                CREATE FUNCTION flotilla_notify_jobs_\(unsafeRaw: payload.rawValue)() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    PERFORM pg_notify('\(unsafeRaw: JobWakeups.channel)', '\(unsafeRaw: payload.rawValue)');
                    RETURN NULL;
                END $$
                """
            ).run()
        }
        try await sql.raw(
            """
            CREATE TRIGGER job_steps_queued AFTER INSERT ON job_steps
            FOR EACH STATEMENT EXECUTE FUNCTION flotilla_notify_jobs_queued()
            """
        ).run()
        try await sql.raw(
            """
            CREATE TRIGGER job_steps_ended AFTER UPDATE OF status ON job_steps
            FOR EACH ROW WHEN (OLD.status = 'running' AND NEW.status <> 'running')
            EXECUTE FUNCTION flotilla_notify_jobs_ended()
            """
        ).run()
        try await sql.raw(
            """
            CREATE TRIGGER job_steps_released AFTER UPDATE OF lease_expires_at ON job_steps
            FOR EACH ROW WHEN (NEW.status = 'running' AND NEW.lease_expires_at < OLD.lease_expires_at)
            EXECUTE FUNCTION flotilla_notify_jobs_released()
            """
        ).run()
        try await sql.raw(
            """
            CREATE TRIGGER jobs_cancel_requested AFTER UPDATE OF cancel_requested ON jobs
            FOR EACH ROW WHEN (NEW.cancel_requested AND NOT OLD.cancel_requested)
            EXECUTE FUNCTION flotilla_notify_jobs_cancel()
            """
        ).run()
    }

    func revert(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase, sql.dialect.name == "postgresql" else { return }
        for trigger in ["job_steps_queued", "job_steps_ended", "job_steps_released"] {
            try await sql.raw("DROP TRIGGER IF EXISTS \(unsafeRaw: trigger) ON job_steps").run()
        }
        try await sql.raw("DROP TRIGGER IF EXISTS jobs_cancel_requested ON jobs").run()
        for payload in JobWakeups.Signal.allCases {
            try await sql.raw("DROP FUNCTION IF EXISTS flotilla_notify_jobs_\(unsafeRaw: payload.rawValue)()").run()
        }
    }
}
