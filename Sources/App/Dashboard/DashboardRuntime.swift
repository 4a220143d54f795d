import Fluent
import Reachability
import SQLKit
import Vapor

/// Keeps health changes: one row each in the reachability history, and a log line.
struct HealthHistory {
    let database: any Database
    let logger: Logger

    /// Most changes logged one by one per batch; beyond it the batch is summarised.
    static let loggedIndividually = 20

    func record(_ changes: [FleetStatus.Change]) async {
        // A VM's first verdict after a start is not news unless it is bad.
        let kept = changes.filter { $0.previous != .unknown || !$0.reachable }
        guard !kept.isEmpty else { return }
        for change in kept.prefix(Self.loggedIndividually) {
            logger.info("reachability: VM \(change.vmID) (\(change.role)) \(change.previous.label) → \(change.reason)")
        }
        if kept.count > Self.loggedIndividually {
            logger.info("reachability: \(kept.count - Self.loggedIndividually) more VMs changed state")
        }
        do {
            try await kept.map {
                ReachabilityChangeRecord(vmID: $0.vmID, health: $0.health, previous: $0.previous, reason: $0.reason, at: $0.at)
            }.create(on: database)
        } catch {
            // A VM deleted a moment ago has no row to point to; the rest of the batch is tried one by one.
            for change in kept {
                try? await ReachabilityChangeRecord(
                    vmID: change.vmID, health: change.health, previous: change.previous, reason: change.reason, at: change.at
                ).create(on: database)
            }
        }
    }
}

/// The sweeper and inventory feeds, led by one instance (`PeriodicTasks`, task
/// `reachability-sweep`): every managed VM probed every `FLOTILLA_REACHABILITY_SECONDS`, power and
/// guest state followed per vSphere connection, monitor agents' silence read, health changes
/// recorded and shared; every other instance follows the shared health (`follow`).
struct DashboardRuntime {
    let database: any Database
    let vsphere: any VSphereProvider
    let fleet: FleetStatus
    let config: FlotillaConfig
    let logger: Logger
    let platformMetrics: PlatformMetrics

    /// How often the set of VMs and connections is read again from the database.
    static let reloadInterval: Duration = .seconds(5)
    /// How often an instance that does not sweep reads the leader's health changes.
    static let followInterval: Duration = .seconds(1)
    /// The periodic task's name (its lease's key).
    static let taskName = "reachability-sweep"

    var settings: SweepSettings {
        SweepSettings(
            interval: .seconds(config.reachabilitySeconds), timeout: .milliseconds(config.reachabilityTimeoutMilliseconds),
            minimumTimeout: .milliseconds(config.reachabilityMinimumTimeoutMilliseconds), retries: config.reachabilityRetries,
            downAfterMisses: config.reachabilityDownAfter,
            fallbackPort: UInt16(config.reachabilityPort))
    }

    /// Sweeps and follows vSphere until cancelled (the lead is lost or the server stops).
    func lead() async {
        _ = await fleet.setLeading(true)
        let sweeper: ReachabilitySweeper?
        if config.reachabilitySeconds > 0 {
            do {
                sweeper = try ReachabilitySweeper(settings: settings, preference: .automatic)
                logger.info("reachability: sweeping every \(config.reachabilitySeconds) s by \(sweeper?.method.rawValue ?? "")")
            } catch {
                logger.error("reachability: no sweeps: \(error)")
                sweeper = nil
            }
        } else {
            sweeper = nil
        }
        var feeds: [UUID: Task<Void, Never>] = [:]
        let clock = ContinuousClock()
        var nextReload = clock.now
        var nextSweep = clock.now
        let interval = sweeper == nil ? Self.reloadInterval : settings.interval
        while !Task.isCancelled {
            if clock.now >= nextReload {
                nextReload = clock.now + Self.reloadInterval
                do {
                    try await reload(sweeper: sweeper, feeds: &feeds)
                } catch {
                    logger.warning("dashboard: cannot read the VMs: \(FlotillaError.describe(error))")
                }
            }
            if let sweeper {
                let sweepStarted = clock.now
                await sweeper.sweep()
                let sweepDuration = clock.now - sweepStarted
                let readings = await sweeper.allStatuses().map { (address: $0.address, reading: ProbeReading($0)) }
                await record(await fleet.applyProbes(readings))
                platformMetrics.recordSweep(duration: sweepDuration, vmsByState: await fleet.countsByHealth())
            }
            // Drift-free ticks: a sweep that overran skips to the next tick instead of piling up.
            nextSweep += interval
            let now = clock.now
            while nextSweep < now { nextSweep += interval }
            do { try await Task.sleep(until: nextSweep, clock: clock) } catch { break }
        }
        for feed in feeds.values { feed.cancel() }
        for feed in feeds.values { await feed.value }
        _ = await fleet.setLeading(false)
    }

    /// On every instance, until cancelled: the VMs read again every `reloadInterval` and, while
    /// another instance leads the sweep, its verdicts taken every `followInterval`.
    func follow() async {
        let clock = ContinuousClock()
        var nextReload = clock.now
        var newest: Date?
        while !Task.isCancelled {
            let leading = await fleet.isLeading
            if !leading {
                do {
                    if clock.now >= nextReload {
                        nextReload = clock.now + Self.reloadInterval
                        _ = await fleet.setRecords(try await Self.records(on: database))
                    }
                    let read = try await SharedHealth(database: database).read(since: newest)
                    newest = read.newest
                    _ = await fleet.applyShared(read.verdicts)
                } catch {
                    logger.warning("dashboard: cannot read the shared health: \(FlotillaError.describe(error))")
                }
            }
            do { try await Task.sleep(for: Self.followInterval) } catch { break }
        }
    }

    /// Keeps the leader's changes: in the history and log, and shared with the other instances.
    private func record(_ changes: [FleetStatus.Change]) async {
        guard !changes.isEmpty else { return }
        await HealthHistory(database: database, logger: logger).record(changes)
        do {
            try await SharedHealth(database: database).write(changes)
        } catch {
            logger.warning("dashboard: cannot share health changes: \(FlotillaError.describe(error))")
        }
    }

    /// Reads the managed VMs (ready ones), the silent monitor agents and the connections; starts
    /// or stops the feeds.
    private func reload(sweeper: ReachabilitySweeper?, feeds: inout [UUID: Task<Void, Never>]) async throws {
        let records = try await Self.records(on: database)
        await record(await fleet.setRecords(records))
        await record(await fleet.setSilentAgents(try await AgentSilence.silentAgents(on: database)))
        await sweeper?.setTargets(await fleet.targets(port: UInt16(config.reachabilityPort)))
        let connections = Set(try await VSphereConnection.query(on: database).all().map { try $0.requireID() })
        for (id, feed) in feeds where !connections.contains(id) {
            feed.cancel()
            feeds[id] = nil
        }
        for id in connections where feeds[id] == nil {
            let feed = InventoryFeed(
                connectionID: id, database: database, vsphere: vsphere, fleet: fleet, logger: logger, record: { await record($0) })
            feeds[id] = Task { await feed.run() }
        }
    }

    /// Every ready VM with its role and connection, in one query (no model per row: this runs
    /// every few seconds over thousands of VMs).
    static func records(on database: any Database) async throws -> [FleetStatus.Record] {
        guard let sql = database as? any SQLDatabase else { return [] }
        struct Row: Decodable {
            var id: UUID
            var host_name: String
            var ip: String
            var vsphere_ref: String?
            var power_state: String?
            var role: String
            var connection_id: UUID
        }
        return try await sql.select()
            .column(SQLColumn("id", table: VM.schema)).column("host_name").column("ip").column("vsphere_ref").column("power_state")
            .column(SQLColumn("name", table: Role.schema), as: "role").column(SQLColumn("connection_id", table: Role.schema))
            .from(VM.schema)
            .join(Role.schema, on: SQLColumn("role_id", table: VM.schema), .equal, SQLColumn("id", table: Role.schema))
            .where(SQLColumn("status", table: VM.schema), .equal, SQLBind(VMStatus.ready.rawValue))
            .all(decoding: Row.self)
            .map {
                FleetStatus.Record(
                    id: $0.id, hostName: $0.host_name, ip: $0.ip, role: $0.role, connectionID: $0.connection_id,
                    reference: $0.vsphere_ref, powerState: $0.power_state)
            }
    }
}

extension Application {
    private struct FleetStatusKey: StorageKey {
        typealias Value = FleetStatus
    }

    private struct DashboardTaskKey: StorageKey {
        typealias Value = Task<Void, Never>
    }

    /// Every VM's live health, fed by `DashboardLifecycle` in a server. Made before boot (by
    /// `DashboardLifecycle.willBoot`), so requests only read it.
    var fleetStatus: FleetStatus {
        if let fleet = storage[FleetStatusKey.self] { return fleet }
        let fleet = FleetStatus(whenChanged: { [keptAnswers] in keptAnswers.forgetAll(because: .liveHealth) })
        storage[FleetStatusKey.self] = fleet
        return fleet
    }

    fileprivate var dashboardTask: Task<Void, Never>? {
        get { storage[DashboardTaskKey.self] }
        set { storage[DashboardTaskKey.self] = newValue }
    }
}

/// Registers the sweep as periodic work led by one instance and, on every serving instance,
/// follows the shared health; stops following before the server goes.
struct DashboardLifecycle: LifecycleHandler {
    func willBootAsync(_ app: Application) async throws {
        _ = app.fleetStatus
        guard app.startsServer else { return }
        let runtime = DashboardRuntime(app)
        try app.periodic.register(name: DashboardRuntime.taskName, interval: .seconds(1)) { _ in await runtime.lead() }
    }

    func didBootAsync(_ app: Application) async throws {
        guard app.startsServer else { return }
        let runtime = DashboardRuntime(app)
        app.dashboardTask = Task { await runtime.follow() }
    }

    func shutdownAsync(_ app: Application) async {
        // Open event streams end first, so the server's shutdown does not wait for them.
        await app.fleetStatus.finishAll()
        if let task = app.dashboardTask {
            task.cancel()
            await task.value
        }
    }
}

extension DashboardRuntime {
    init(_ app: Application) {
        self.init(
            database: app.db, vsphere: app.flotilla.vsphere, fleet: app.fleetStatus, config: app.flotilla.config, logger: app.logger,
            platformMetrics: app.platformMetrics)
    }
}
