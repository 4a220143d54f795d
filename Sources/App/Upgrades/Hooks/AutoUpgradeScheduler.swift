import Fluent
import Vapor

/// Turns bursts whose quiet period has ended into rollouts (issue 12 §6). It runs as the
/// periodic task `auto-upgrade`, so one instance at a time starts rollouts, whichever instance
/// received the hooks; the bursts wait in the database across restarts.
struct AutoUpgradeScheduler {
    let database: any Database
    let rollouts: UpgradeRollouts
    let quietSeconds: Int
    let logger: Logger

    static let taskName = "auto-upgrade"
    /// How often the leader looks for due bursts; a burst starts at most this late.
    static let interval: Duration = .seconds(1)

    static func register(on app: Application) throws {
        try app.periodic.register(name: taskName, interval: interval) { context in
            let scheduler = AutoUpgradeScheduler(
                database: context.database, rollouts: app.upgradeRollouts, quietSeconds: app.flotilla.config.upgradeQuietSeconds,
                logger: context.logger)
            try await scheduler.pass()
        }
    }

    /// Starts one rollout per due burst, of its newest revision.
    func pass() async throws {
        let queue = PendingAutoUpgrades(database: database)
        for burst in try await queue.due() {
            try Task.checkCancellation()
            try await start(burst, queue: queue)
        }
    }

    private func start(_ burst: PendingAutoUpgrade, queue: PendingAutoUpgrades) async throws {
        let commits = "\(burst.deliveries) commit\(burst.deliveries == 1 ? "" : "s")"
        let hook = try await UpgradeHook.find(burst.hookID, on: database)
        let hookName = hook.map { "\($0.format) \($0.repositoryURL)" } ?? "deleted hook"
        let environment = try await Environment.find(burst.environmentID, on: database)?.name ?? "?"
        let running = try await UpgradeRollout.query(on: database).filter(\.$applicationID == burst.applicationID)
            .filter(\.$environmentID == burst.environmentID).filter(\.$state == .running).count()
        if running > 0 {
            // One rollout at a time per application and environment: this burst follows the running one.
            try await queue.postpone(burst, seconds: quietSeconds)
            return
        }
        if try await BadRevisions(database: database).isBad(applicationID: burst.applicationID, revision: burst.revision) {
            if try await queue.remove(burst) {
                await AuditLog.record(
                    .upgrade, action: "upgrade.auto.skipped", result: .failure,
                    details: "\(environment): revision \(burst.revision) (\(commits) from \(hookName)) is marked bad; not applied",
                    by: AuditLog.Actor(name: "hook:\(hookName)", ip: nil), on: database, logger: logger)
            }
            return
        }
        do {
            let started = try await rollouts.start(
                RolloutRequest(
                    applicationID: burst.applicationID, environmentID: burst.environmentID, revision: burst.revision,
                    trigger: .hook(name: hookName)))
            _ = try await queue.remove(burst)
            logger.notice("auto-upgrade: \(commits) → rollout \(started.rolloutID) of \(started.revision) in \(environment)")
        } catch let error as FlotillaError where error.kind == .conflict || error.kind == .unavailable {
            // Busy, or the repository cannot be read now: try again after another quiet period.
            logger.warning("auto-upgrade in \(environment) postponed: \(error.message)")
            try await queue.postpone(burst, seconds: quietSeconds)
        } catch {
            // The revision or the environment cannot take a rollout (unknown revision, no VMs): say why, once.
            if try await queue.remove(burst) {
                await AuditLog.record(
                    .upgrade, action: "upgrade.auto.failed", result: .failure,
                    details:
                        "\(environment): revision \(burst.revision) (\(commits) from \(hookName)) not rolled out: \(FlotillaError.describe(error))",
                    by: AuditLog.Actor(name: "hook:\(hookName)", ip: nil), on: database, logger: logger)
            }
        }
    }
}
