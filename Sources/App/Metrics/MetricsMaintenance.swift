import Fluent
import Foundation
import SQLKit

/// Downsampling and retention of the metrics store (SPEC BEY-7), run in the background.
///
/// 20 s samples become 5-minute rollups once a bucket can no longer receive samples, and
/// 5-minute rollups become hourly ones once their hour is complete; each rollup keeps the
/// minimum, average and maximum, and how many samples it summarises (so an hour's average is
/// weighted by its samples, not by its 5-minute buckets). A pass writes rollups with upserts
/// and then moves the resolution's mark, so a pass interrupted or repeated — after a restart,
/// or on another instance — rewrites the same rows instead of adding to them.
struct MetricsMaintenance {
    let database: any Database

    /// A 5-minute bucket is summarised only after this much more time, so the collector's
    /// overlapping reads have landed (a later backfill reopens the bucket, see `MetricsStore`).
    static let settleSeconds: Int64 = 120

    private var store: MetricsStore { MetricsStore(database: database) }

    /// Rolls up what is due, then deletes what is past its age.
    func pass(now: Date = Date()) async throws {
        let time = Int64(now.timeIntervalSince1970.rounded(.down))
        try await rollUp(now: time)
        try await deleteExpired(now: time)
    }

    func rollUp(now: Int64) async throws {
        let fiveMinutes = MetricResolution.fiveMinutes
        let fiveMinutesDue = fiveMinutes.bucket(now - Self.settleSeconds)
        // Nothing older than the samples' retention can be rolled up.
        let fiveMinutesFrom = max(
            try await store.mark(fiveMinutes) ?? 0, fiveMinutes.bucket(now - MetricResolution.raw.retentionSeconds))
        if fiveMinutesFrom < fiveMinutesDue {
            try await summarizeSamples(from: fiveMinutesFrom, to: fiveMinutesDue)
            try await store.setMark(fiveMinutes, to: fiveMinutesDue)
        }

        let hour = MetricResolution.hour
        guard let fiveMinutesDone = try await store.mark(fiveMinutes) else { return }
        let hourDue = hour.bucket(fiveMinutesDone)
        let hourFrom = max(try await store.mark(hour) ?? 0, hour.bucket(now - fiveMinutes.retentionSeconds))
        if hourFrom < hourDue {
            try await summarizeFiveMinutes(from: hourFrom, to: hourDue)
            try await store.setMark(hour, to: hourDue)
        }
    }

    /// 20 s samples in [from, to) → 5-minute rollups.
    private func summarizeSamples(from: Int64, to: Int64) async throws {
        let sql = try store.sql
        let step = MetricResolution.fiveMinutes.rawValue
        try await sql.raw(
            """
            INSERT INTO \(ident: MetricTables.rollups)
            (vm_id, resolution, at, cpu_min, cpu_avg, cpu_max, cpu_count, memory_min, memory_avg, memory_max, memory_count)
            SELECT vm_id, \(unsafeRaw: String(step)), at / \(unsafeRaw: String(step)) * \(unsafeRaw: String(step)),
            MIN(cpu), AVG(cpu), MAX(cpu), COUNT(cpu), MIN(memory), AVG(memory), MAX(memory), COUNT(memory)
            FROM \(ident: MetricTables.samples)
            WHERE at >= \(bind: from) AND at < \(bind: to)
            GROUP BY vm_id, at / \(unsafeRaw: String(step))
            \(unsafeRaw: Self.replaceRollup)
            """
        ).run()
    }

    /// 5-minute rollups in [from, to) → hourly rollups; averages weighted by sample counts.
    private func summarizeFiveMinutes(from: Int64, to: Int64) async throws {
        let sql = try store.sql
        let step = MetricResolution.hour.rawValue
        try await sql.raw(
            """
            INSERT INTO \(ident: MetricTables.rollups)
            (vm_id, resolution, at, cpu_min, cpu_avg, cpu_max, cpu_count, memory_min, memory_avg, memory_max, memory_count)
            SELECT vm_id, \(unsafeRaw: String(step)), at / \(unsafeRaw: String(step)) * \(unsafeRaw: String(step)),
            MIN(cpu_min), SUM(cpu_avg * cpu_count) / CAST(NULLIF(SUM(cpu_count), 0) AS DOUBLE PRECISION), MAX(cpu_max),
            CAST(SUM(cpu_count) AS BIGINT),
            MIN(memory_min), SUM(memory_avg * memory_count) / CAST(NULLIF(SUM(memory_count), 0) AS DOUBLE PRECISION),
            MAX(memory_max), CAST(SUM(memory_count) AS BIGINT)
            FROM \(ident: MetricTables.rollups)
            WHERE resolution = \(bind: MetricResolution.fiveMinutes.rawValue) AND at >= \(bind: from) AND at < \(bind: to)
            GROUP BY vm_id, at / \(unsafeRaw: String(step))
            \(unsafeRaw: Self.replaceRollup)
            """
        ).run()
    }

    /// A bucket summarised again replaces its earlier summary.
    private static let replaceRollup = """
        ON CONFLICT (vm_id, resolution, at) DO UPDATE SET
        cpu_min = excluded.cpu_min, cpu_avg = excluded.cpu_avg, cpu_max = excluded.cpu_max, cpu_count = excluded.cpu_count,
        memory_min = excluded.memory_min, memory_avg = excluded.memory_avg, memory_max = excluded.memory_max,
        memory_count = excluded.memory_count
        """

    func deleteExpired(now: Int64) async throws {
        let sql = try store.sql
        try await sql.delete(from: MetricTables.samples)
            .where("at", .lessThan, SQLBind(now - MetricResolution.raw.retentionSeconds)).run()
        for resolution in [MetricResolution.fiveMinutes, .hour] {
            try await sql.delete(from: MetricTables.rollups)
                .where("resolution", .equal, SQLBind(resolution.rawValue))
                .where("at", .lessThan, SQLBind(now - resolution.retentionSeconds)).run()
        }
    }
}
