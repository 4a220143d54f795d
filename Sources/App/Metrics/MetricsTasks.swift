import Vapor

/// The metrics store's background work, led by one instance at a time (`app.periodic`):
/// collection every `FLOTILLA_METRICS_SECONDS` (unless 0), rollups and retention every minute
/// (always: stored metrics keep ageing out while collection is off).
enum MetricsTasks {
    static let collectionTask = "metrics-collection"
    static let maintenanceTask = "metrics-maintenance"

    static func register(on app: Application) throws {
        try app.periodic.register(name: maintenanceTask, interval: .seconds(60)) { context in
            try await MetricsMaintenance(database: context.database).pass()
        }
        let seconds = app.flotilla.config.metricsCollectSeconds
        guard seconds > 0 else { return }
        let vsphere = app.flotilla.vsphere
        let platformMetrics = app.platformMetrics
        try app.periodic.register(name: collectionTask, interval: .seconds(seconds)) { context in
            try await MetricsCollector(
                database: context.database, vsphere: vsphere, logger: context.logger, platformMetrics: platformMetrics
            ).pass()
        }
    }
}
