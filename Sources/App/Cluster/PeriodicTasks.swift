import Fluent
import NIOConcurrencyHelpers
import Vapor

/// Periodic work that one instance at a time does (SPEC BEY-8): inventory sync now,
/// reachability sweeps, metrics and agent-silence checks later. This is the one way such work
/// is started:
///
///     try app.periodic.register(name: "inventory-sync", interval: .seconds(15)) { context in
///         try await InventorySync(database: context.database, ...).pass()
///     }
///
/// Register in `configure` or a lifecycle handler. Every serving instance competes for the
/// task's `LeaderLease` (15 s, renewed every 5 s); only the holder runs `work`, first at once
/// and then every `interval` after a pass ends. When the holder dies, another instance leads
/// within 20 s; when it shuts down, it releases the lease and another leads within 5 s. `work`
/// is cancelled when its instance loses the lease, so two passes never overlap; it should
/// check `Task.checkCancellation()` between units of work. A one-off command such as
/// `flotilla user list` never runs periodic work.
final class PeriodicTasks: Sendable {
    /// What a pass gets besides what its closure captured.
    struct Context: Sendable {
        let database: any Database
        let logger: Logger
        let instance: InstanceIdentity
    }

    typealias Work = @Sendable (Context) async throws -> Void

    struct Registration: Sendable {
        let name: String
        let interval: Duration
        let work: Work
    }

    struct DuplicateName: Error, CustomStringConvertible {
        let name: String
        var description: String { "a periodic task named '\(name)' is already registered" }
    }

    private struct Runner: Sendable {
        let context: Context
        var tasks: [Task<Void, Never>] = []
    }

    private struct State: Sendable {
        var registrations: [Registration] = []
        var runner: Runner?
    }

    private let state = NIOLockedValueBox(State())

    /// Adds a task; if this instance already serves, it starts competing for the lead at once.
    /// `name` is the lease's key: keep it stable across releases.
    func register(name: String, interval: Duration, work: @escaping Work) throws {
        let registration = Registration(name: name, interval: interval, work: work)
        try state.withLockedValue { state in
            guard !state.registrations.contains(where: { $0.name == name }) else { throw DuplicateName(name: name) }
            state.registrations.append(registration)
            if let context = state.runner?.context {
                state.runner?.tasks.append(Self.start(registration, context: context))
            }
        }
    }

    /// The registered tasks' names, in order of registration.
    var names: [String] { state.withLockedValue { $0.registrations.map(\.name) } }

    /// Starts competing for every registered task; called once the instance serves.
    func start(_ context: Context) {
        state.withLockedValue { state in
            guard state.runner == nil else { return }
            state.runner = Runner(context: context, tasks: state.registrations.map { Self.start($0, context: context) })
        }
    }

    /// Stops every task, waits for running passes to end and releases this instance's leases.
    func stop() async {
        let runner = state.withLockedValue { state in
            defer { state.runner = nil }
            return state.runner
        }
        guard let runner else { return }
        for task in runner.tasks { task.cancel() }
        for task in runner.tasks { await task.value }
    }

    private static func start(_ registration: Registration, context: Context) -> Task<Void, Never> {
        Task { await lead(registration, context: context) }
    }

    /// Takes or renews the lease every `LeaderLease.renewInterval`; runs the work while it holds it.
    private static func lead(_ registration: Registration, context: Context) async {
        let clock = ContinuousClock()
        let name = registration.name
        var lastConfirmed: ContinuousClock.Instant?
        var work: Task<Void, Never>?
        while !Task.isCancelled {
            let leading: Bool
            do {
                leading = try await LeaderLease.takeOrRenew(name, holder: context.instance.id, on: context.database)
                lastConfirmed = leading ? clock.now : nil
            } catch {
                context.logger.warning("periodic task \(name): cannot renew the lead: \(FlotillaError.describe(error))")
                // Still ours only while the last renewal cannot have run out before the next try.
                let safe = Duration.seconds(LeaderLease.durationSeconds) - LeaderLease.renewInterval
                leading = lastConfirmed.map { clock.now - $0 < safe } ?? false
            }
            if leading, work == nil {
                context.logger.notice("periodic task \(name): this instance leads")
                work = Task { await repeatWork(registration, context: context) }
            } else if !leading, let running = work {
                context.logger.notice("periodic task \(name): this instance no longer leads")
                running.cancel()
                await running.value
                work = nil
            }
            try? await Task.sleep(for: LeaderLease.renewInterval)
        }
        if let running = work {
            running.cancel()
            await running.value
            do {
                try await LeaderLease.release(name, heldBy: context.instance.id, on: context.database)
            } catch {
                context.logger.warning("periodic task \(name): cannot release the lead: \(FlotillaError.describe(error))")
            }
        }
    }

    private static func repeatWork(_ registration: Registration, context: Context) async {
        while !Task.isCancelled {
            do {
                try await registration.work(context)
            } catch is CancellationError {
                return
            } catch {
                context.logger.warning("periodic task \(registration.name) failed: \(FlotillaError.describe(error))")
            }
            try? await Task.sleep(for: registration.interval)
        }
    }
}

extension Application {
    private struct PeriodicTasksKey: StorageKey, LockKey {
        typealias Value = PeriodicTasks
    }

    /// The periodic tasks led by one instance at a time (see `PeriodicTasks`).
    var periodic: PeriodicTasks {
        let lock = locks.lock(for: PeriodicTasksKey.self)
        return lock.withLock {
            if let existing = storage[PeriodicTasksKey.self] { return existing }
            let created = PeriodicTasks()
            storage[PeriodicTasksKey.self] = created
            return created
        }
    }
}
