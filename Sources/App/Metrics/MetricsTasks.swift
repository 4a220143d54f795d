import Vapor

/// The metrics store's background work, led by one instance at a time (`app.periodic`):
/// collection every `FLOTILLA_METRICS_SECONDS`, rollups and retention every minute.
enum MetricsTasks {
    static let collectionTask = "metrics-collection"
    static let maintenanceTask = "metrics-maintenance"

    static func register(on app: Application) throws {
        let seconds = app.flotilla.config.metricsCollectSeconds
        guard seconds > 0 else { return }
        let vsphere = app.flotilla.vsphere
        let platformMetrics = app.platformMetrics
        try app.periodic.register(name: collectionTask, interval: .seconds(seconds)) { context in
            try await MetricsCollector(
                database: context.database, vsphere: vsphere, logger: context.logger, platformMetrics: platformMetrics
            ).pass()
        }
        try app.periodic.register(name: maintenanceTask, interval: .seconds(60)) { context in
            try await MetricsMaintenance(database: context.database).pass()
        }
    }
}
