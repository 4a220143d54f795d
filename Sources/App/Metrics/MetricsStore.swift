import Fluent
import Foundation
import SQLKit

/// The tables of the metrics store (SPEC BEY-7); plain SQL tables, not Fluent models, because
/// rows are written and read in bulk.
enum MetricTables {
    static let samples = "vm_metric_samples"
    static let rollups = "vm_metric_rollups"
    static let marks = "metric_rollup_marks"
}

/// How finely a series is kept, and for how long.
enum MetricResolution: Int, CaseIterable, Sendable {
    /// vSphere's real-time interval.
    case raw = 20
    case fiveMinutes = 300
    case hour = 3600

    var seconds: Int64 { Int64(rawValue) }

    /// Older data of this resolution is deleted (20 s for a day, 5 min for 30 days, 1 h for a year).
    var retentionSeconds: Int64 {
        switch self {
        case .raw: 86_400
        case .fiveMinutes: 30 * 86_400
        case .hour: 365 * 86_400
        }
    }

    /// Rounds a Unix time down to the start of its bucket.
    func bucket(_ time: Int64) -> Int64 {
        let remainder = time % seconds
        return remainder >= 0 ? time - remainder : time - remainder - seconds
    }
}

/// The windows a chart offers (SPEC DASH-5), each read at the finest resolution that keeps it
/// within about a thousand points.
enum MetricRange: String, CaseIterable, Sendable {
    case oneHour = "1h"
    case twoHours = "2h"
    case sixHours = "6h"
    case day = "24h"
    case week = "7d"

    static let standard = MetricRange.twoHours

    /// Reads `range=`; anything else is a validation error naming the choices.
    init(parsing text: String?) throws {
        guard let text else {
            self = Self.standard
            return
        }
        guard let range = MetricRange(rawValue: text) else {
            throw FlotillaError.validation(
                "range must be one of \(MetricRange.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = range
    }

    var seconds: Int64 {
        switch self {
        case .oneHour: 3600
        case .twoHours: 7200
        case .sixHours: 6 * 3600
        case .day: 86_400
        case .week: 7 * 86_400
        }
    }

    var resolution: MetricResolution {
        switch self {
        case .oneHour, .twoHours, .sixHours: .raw
        case .day: .fiveMinutes
        case .week: .hour
        }
    }
}

/// One VM's CPU and memory usage at one 20 s tick, in percent; nil where vSphere gave nothing.
struct MetricSample: Sendable, Equatable {
    var vmID: UUID
    /// Unix time of the tick (a multiple of 20).
    var at: Int64
    var cpu: Double?
    var memory: Double?
}

/// A chart's data: one value per bucket from `start`, every `resolution`; nil is a gap.
struct MetricSeries: Sendable, Equatable {
    /// Average per bucket, and for rollups the minimum and maximum (nil for 20 s samples).
    struct Band: Sendable, Equatable {
        var avg: [Double?]
        var min: [Double?]?
        var max: [Double?]?
    }

    var range: MetricRange
    var resolution: MetricResolution
    /// Unix time of the first bucket.
    var start: Int64
    var cpu: Band
    var memory: Band

    var count: Int { cpu.avg.count }
}

/// Writes samples and reads series. Works on SQLite and PostgreSQL (plain SQL, no dialect branches).
struct MetricsStore {
    let database: any Database

    var sql: any SQLDatabase {
        get throws {
            guard let sql = database as? any SQLDatabase else {
                throw FlotillaError(.unavailable, "the metrics store needs an SQL database")
            }
            return sql
        }
    }

    /// Stores samples; a (VM, tick) already stored keeps its first value. Samples older than
    /// finished rollups reopen them, so the next maintenance pass includes them.
    func insert(_ samples: [MetricSample]) async throws {
        guard !samples.isEmpty else { return }
        let sql = try self.sql
        // 4 binds a row: well under SQLite's and PostgreSQL's limits per statement.
        for start in stride(from: 0, to: samples.count, by: 500) {
            let insert = sql.insert(into: MetricTables.samples).columns("vm_id", "at", "cpu", "memory")
            for sample in samples[start..<min(start + 500, samples.count)] {
                insert.values(SQLBind(sample.vmID), SQLBind(sample.at), SQLBind(sample.cpu), SQLBind(sample.memory))
            }
            try await insert.ignoringConflicts(with: ["vm_id", "at"]).run()
        }
        if let oldest = samples.map(\.at).min() {
            try await reopenRollups(from: oldest)
        }
    }

    /// Lowers the rollup marks to before `time` (samples arrived for buckets already summarised).
    func reopenRollups(from time: Int64) async throws {
        let sql = try self.sql
        for resolution in [MetricResolution.fiveMinutes, .hour] {
            let bucket = resolution.bucket(time)
            try await sql.raw(
                """
                UPDATE \(ident: MetricTables.marks) SET done_until = \(bind: bucket)
                WHERE resolution = \(bind: resolution.rawValue) AND done_until > \(bind: bucket)
                """
            ).run()
        }
    }

    /// The Unix time of the newest sample of any VM, if there is one (the collector's lag).
    func newestSampleTime() async throws -> Int64? {
        let row = try await sql.raw("SELECT MAX(at) AS newest FROM \(ident: MetricTables.samples)").first()
        return try row?.decode(column: "newest", as: Int64?.self)
    }

    /// Up to when rollups of a resolution are complete.
    func mark(_ resolution: MetricResolution) async throws -> Int64? {
        let row = try await sql.raw(
            "SELECT done_until FROM \(ident: MetricTables.marks) WHERE resolution = \(bind: resolution.rawValue)"
        ).first()
        return try row?.decode(column: "done_until", as: Int64.self)
    }

    func setMark(_ resolution: MetricResolution, to time: Int64) async throws {
        try await sql.raw(
            """
            INSERT INTO \(ident: MetricTables.marks) (resolution, done_until) VALUES (\(bind: resolution.rawValue), \(bind: time))
            ON CONFLICT (resolution) DO UPDATE SET done_until = excluded.done_until
            """
        ).run()
    }

    /// The series of one VM over `range` ending at `now`: one slot per bucket, nil where
    /// nothing was collected (the VM was off, vSphere or the collector was down).
    func series(of vmID: UUID, range: MetricRange, now: Date = Date()) async throws -> MetricSeries {
        let resolution = range.resolution
        let step = resolution.seconds
        let count = Int(range.seconds / step)
        let end = resolution.bucket(Int64(now.timeIntervalSince1970.rounded(.down)))
        let start = end - Int64(count - 1) * step
        var series = MetricSeries(
            range: range, resolution: resolution, start: start,
            cpu: .init(avg: Array(repeating: nil, count: count)),
            memory: .init(avg: Array(repeating: nil, count: count)))
        func slot(_ at: Int64) -> Int? {
            let index = Int((at - start) / step)
            return at >= start && index < count ? index : nil
        }
        let sql = try self.sql
        if resolution == .raw {
            let rows = try await sql.raw(
                """
                SELECT at, cpu, memory FROM \(ident: MetricTables.samples)
                WHERE vm_id = \(bind: vmID) AND at >= \(bind: start) AND at <= \(bind: end) ORDER BY at
                """
            ).all()
            for row in rows {
                guard let index = slot(try row.decode(column: "at", as: Int64.self)) else { continue }
                series.cpu.avg[index] = try row.decode(column: "cpu", as: Double?.self)
                series.memory.avg[index] = try row.decode(column: "memory", as: Double?.self)
            }
            return series
        }
        series.cpu.min = Array(repeating: nil, count: count)
        series.cpu.max = series.cpu.min
        series.memory.min = series.cpu.min
        series.memory.max = series.cpu.min
        // Finished buckets come from the rollups, newer ones straight from the samples.
        let finished = min(try await mark(resolution) ?? start, end + step)
        var rows: [any SQLRow] = []
        if finished > start {
            rows += try await sql.raw(
                """
                SELECT at AS bucket, cpu_min, cpu_avg, cpu_max, memory_min, memory_avg, memory_max FROM \(ident: MetricTables.rollups)
                WHERE vm_id = \(bind: vmID) AND resolution = \(bind: resolution.rawValue)
                AND at >= \(bind: start) AND at < \(bind: finished)
                """
            ).all()
        }
        let recentFrom = max(finished, start)
        if recentFrom <= end {
            rows += try await sql.raw(
                """
                SELECT at / \(unsafeRaw: String(step)) * \(unsafeRaw: String(step)) AS bucket,
                MIN(cpu) AS cpu_min, AVG(cpu) AS cpu_avg, MAX(cpu) AS cpu_max,
                MIN(memory) AS memory_min, AVG(memory) AS memory_avg, MAX(memory) AS memory_max
                FROM \(ident: MetricTables.samples)
                WHERE vm_id = \(bind: vmID) AND at >= \(bind: recentFrom) AND at < \(bind: end + step)
                GROUP BY at / \(unsafeRaw: String(step))
                """
            ).all()
        }
        for row in rows {
            guard let index = slot(try row.decode(column: "bucket", as: Int64.self)) else { continue }
            series.cpu.min?[index] = try row.decode(column: "cpu_min", as: Double?.self)
            series.cpu.avg[index] = try row.decode(column: "cpu_avg", as: Double?.self)
            series.cpu.max?[index] = try row.decode(column: "cpu_max", as: Double?.self)
            series.memory.min?[index] = try row.decode(column: "memory_min", as: Double?.self)
            series.memory.avg[index] = try row.decode(column: "memory_avg", as: Double?.self)
            series.memory.max?[index] = try row.decode(column: "memory_max", as: Double?.self)
        }
        return series
    }
}
