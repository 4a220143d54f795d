import Fluent
import Foundation
import Metrics
import NIOConcurrencyHelpers
import Prometheus
import SQLKit
import Vapor

/// The platform's own measurements for Prometheus (SPEC BEY-7): recorded through swift-metrics
/// into this application's swift-prometheus registry (one per application, so tests and
/// several apps in a process never share counters), read at `GET /metrics`.
///
/// Recorded as they happen: HTTP requests (`RequestMetrics`), reachability sweeps
/// (`recordSweep`), metrics collection passes (`recordCollection`). Read from the database
/// at each scrape, so every instance reports the whole installation: jobs by state and the
/// metrics collector's lag.
final class PlatformMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    /// VM states reported by an earlier sweep, set to 0 when a sweep no longer sees them.
    private let sweepStates = NIOLockedValueBox<Set<String>>([])
    private let requestRecorders = NIOLockedValueBox<[RequestLabels: RequestRecorder]>([:])

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        let fast: [Duration] = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
        ]
        factory.durationHistogramBuckets = [Name.requestDuration: fast, Name.sweepDuration: fast]
        self.factory = factory
    }

    /// Metric names, as Prometheus shows them.
    enum Name {
        static let requests = "flotilla_http_requests_total"
        static let requestDuration = "flotilla_http_request_duration_seconds"
        static let sweepDuration = "flotilla_reachability_sweep_duration_seconds"
        static let vms = "flotilla_vms"
        static let jobs = "flotilla_jobs"
        static let collectionDuration = "flotilla_metrics_collection_duration_seconds"
        static let collectedVMs = "flotilla_metrics_collected_vms"
        static let collectorLag = "flotilla_metrics_collector_lag_seconds"
        static let keptAnswers = "flotilla_kept_answers"
        static let keptAnswersForgotten = "flotilla_kept_answers_forgotten"
    }

    /// One answered HTTP request; `route` is the route's pattern (`api/v1/vms/:id`), never the
    /// concrete path, so the number of series stays bounded.
    func recordRequest(method: String, route: String, status: UInt, duration: Duration) {
        requestRecorder(method: method, route: route, status: status).record(duration)
    }

    /// The counter and timer of one method, route and status, made once per combination: the
    /// registry finds a metric by its name and labels, which cost more than replaying a kept
    /// answer (`KeptAnswersResponder`).
    private func requestRecorder(method: String, route: String, status: UInt) -> RequestRecorder {
        let labels = RequestLabels(method: method, route: route, status: status)
        if let known = requestRecorders.withLockedValue({ $0[labels] }) { return known }
        let recorder = RequestRecorder(
            counter: CoreMetrics.Counter(
                label: Name.requests, dimensions: [("method", method), ("route", route), ("status", String(status))],
                factory: factory),
            timer: CoreMetrics.Timer(label: Name.requestDuration, dimensions: [("method", method), ("route", route)], factory: factory))
        requestRecorders.withLockedValue { $0[labels] = recorder }
        return recorder
    }

    private struct RequestRecorder: Sendable {
        let counter: CoreMetrics.Counter
        let timer: CoreMetrics.Timer

        func record(_ duration: Duration) {
            counter.increment()
            timer.record(duration: duration)
        }
    }

    private struct RequestLabels: Hashable, Sendable {
        var method: String
        var route: String
        var status: UInt
    }

    /// One reachability sweep: how long it took and how many VMs it found in each state
    /// (`up`, `poweredOff`, …; a state missing from a later sweep is reported as 0).
    func recordSweep(duration: Duration, vmsByState: [String: Int]) {
        CoreMetrics.Timer(label: Name.sweepDuration, factory: factory).record(duration: duration)
        let states = sweepStates.withLockedValue { known in
            known.formUnion(vmsByState.keys)
            return known
        }
        for state in states {
            CoreMetrics.Gauge(label: Name.vms, dimensions: [("state", state)], factory: factory)
                .record(Double(vmsByState[state] ?? 0))
        }
    }

    /// One pass of the metrics collector.
    func recordCollection(duration: Duration, vms: Int) {
        CoreMetrics.Timer(label: Name.collectionDuration, factory: factory).record(duration: duration)
        CoreMetrics.Gauge(label: Name.collectedVMs, factory: factory).record(Double(vms))
    }

    /// The text exposition, after reading the database-backed gauges and this instance's kept
    /// answers' counts since its start (by outcome, and how often all were forgotten, by cause).
    func exposition(database: any Database, keptAnswers: KeptAnswers.Statistics, now: Date = Date()) async throws -> String {
        let outcomes = [
            ("replayed", keptAnswers.replayed), ("refreshed", keptAnswers.refreshed), ("built", keptAnswers.built),
            ("waited", keptAnswers.waited), ("waited_then_built", keptAnswers.waitedThenBuilt),
            ("forgotten_while_built", keptAnswers.forgottenWhileBuilt),
        ]
        for (outcome, count) in outcomes {
            CoreMetrics.Gauge(label: Name.keptAnswers, dimensions: [("outcome", outcome)], factory: factory).record(Double(count))
        }
        for cause in KeptAnswers.ForgetCause.allCases {
            CoreMetrics.Gauge(label: Name.keptAnswersForgotten, dimensions: [("cause", cause.rawValue)], factory: factory)
                .record(Double(keptAnswers.forgotten[cause] ?? 0))
        }
        if let sql = database as? any SQLDatabase {
            var counts = Dictionary(uniqueKeysWithValues: JobStatus.allCases.map { ($0.rawValue, 0) })
            for row in try await sql.raw("SELECT status, COUNT(*) AS n FROM \(ident: Job.schema) GROUP BY status").all() {
                counts[try row.decode(column: "status", as: String.self)] = try row.decode(column: "n", as: Int.self)
            }
            for (state, count) in counts {
                CoreMetrics.Gauge(label: Name.jobs, dimensions: [("state", state)], factory: factory).record(Double(count))
            }
        }
        // Seconds since the newest stored sample: grows while vSphere or the collector is down.
        if let newest = try await MetricsStore(database: database).newestSampleTime() {
            CoreMetrics.Gauge(label: Name.collectorLag, factory: factory)
                .record(max(0, now.timeIntervalSince1970 - Double(newest)))
        }
        return registry.emitToString()
    }
}

extension CoreMetrics.Timer {
    fileprivate func record(duration: Duration) {
        let (seconds, attoseconds) = duration.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

extension Application {
    private struct PlatformMetricsKey: StorageKey, LockKey {
        typealias Value = PlatformMetrics
    }

    /// This application's Prometheus measurements (see `PlatformMetrics`).
    var platformMetrics: PlatformMetrics {
        let lock = locks.lock(for: PlatformMetricsKey.self)
        return lock.withLock {
            if let existing = storage[PlatformMetricsKey.self] { return existing }
            let created = PlatformMetrics()
            storage[PlatformMetricsKey.self] = created
            return created
        }
    }
}
