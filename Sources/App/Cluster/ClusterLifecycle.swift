import Vapor

/// Joins the cluster when this process serves: records the instance, beats its heartbeat and
/// competes for periodic work; leaves it in order at shutdown. One-off commands beside a
/// running server (`flotilla user list`) do none of this.
struct ClusterLifecycle: LifecycleHandler {
    private struct HeartbeatTaskKey: StorageKey {
        typealias Value = Task<Void, Never>
    }

    func didBootAsync(_ app: Application) async throws {
        guard app.startsServer else { return }
        let heartbeat = InstanceHeartbeat(identity: app.instance, database: app.db, logger: app.logger)
        try await heartbeat.announce()
        app.storage[HeartbeatTaskKey.self] = Task { await heartbeat.run() }
        app.periodic.start(PeriodicTasks.Context(database: app.db, logger: app.logger, instance: app.instance))
    }

    func shutdownAsync(_ app: Application) async {
        guard let beating = app.storage[HeartbeatTaskKey.self] else { return }
        // Periodic work first, so that its leases are released while the database is there.
        await app.periodic.stop()
        beating.cancel()
        await beating.value
        await InstanceHeartbeat(identity: app.instance, database: app.db, logger: app.logger).markStopped()
    }
}
