import Fluent
import NIOConcurrencyHelpers
import NIOCore
import Vapor

/// Runs jobs (SPEC BEY-1, BEY-8). A job and its steps are rows: a step names its `StepKind`
/// and carries its parameters, so any instance sharing the database can run it. Each instance
/// claims runnable steps up to its own limit (and the per-connection limit over all instances),
/// holds a lease on each while it runs it, renews it, sees a cancel request through the job's
/// row, and gives its leases back at shutdown. A step whose lease expired is taken over by
/// whichever instance sees it first, as its kind's rerun rule says.
///
/// Claiming is on the path of every step, so it stays short: the loop's statements and the
/// steps' ends go over `claims` (on PostgreSQL a connection that running steps' work never
/// holds), a claim is one round trip, the loop claims again as soon as a step's end is written
/// (before its audit entry, and before any other statement of the round), and other
/// instances' changes arrive by LISTEN/NOTIFY (`JobWakeups`) rather than at the next poll: only
/// those that leave work for others (the instance that ends a step fills its slot itself). The engine runs on an event loop (the one of
/// its `claims` connection), not on the cooperative pool: the steps' own work keeps that pool's
/// few threads busy, and a round of the loop waiting for a free thread between each end, wake
/// and claim was where most of the time from a step's end to the next claim went.
actor JobEngine {
    /// How leases and polling are paced.
    struct Timing: Sendable {
        /// How long a claimed step stays this instance's without renewal.
        var lease: TimeInterval = 15
        var renewEvery: Duration = .seconds(5)
        /// How often the database is read for new steps, cancel requests and expired leases
        /// when nothing wakes the engine sooner (notifications, or a step of its own ending).
        var poll: Duration = .milliseconds(250)
        /// How often cancel requests and expired leases are looked for while other instances'
        /// changes are heard (`JobWakeups`): a cancel request or a released lease then asks for
        /// a look at once, so these reads only catch what no notification announces (a lease
        /// that ran out), and claims on a busy engine do not queue behind them.
        var lookWhileListening: Duration = .seconds(1)
    }

    /// Why this instance stops a step it runs.
    private enum StopReason {
        case cancelRequested, shutdown, leaseLost
    }

    private struct RunningStep {
        let jobID: UUID
        let task: Task<Void, Never>
        var stop: StopReason?
        /// Its end is written: it no longer takes a slot nor has a lease, though its task still
        /// writes the audit entry.
        var settled = false
    }

    private let database: any Database
    /// Where the loop claims, renews and watches, and steps' ends are written.
    private let claims: any Database
    /// Where the engine's code runs (`unownedExecutor`), and its poll's timer.
    private let eventLoop: any EventLoop
    /// The event loop as an executor, held so that it lives as long as the engine.
    private let executor: any SerialExecutor
    private let wakeups: JobWakeups?
    private let logger: Logger
    private let operations: VMOperations
    private let perInstance: Int
    private let perConnection: Int
    private let timing: Timing
    /// Told when a step's work has ended, before its end is written: what it wrote is there.
    private let afterStepWork: @Sendable () -> Void
    /// Locked rather than actor-isolated so that kinds can be added before the app boots.
    private let registry: NIOLockedValueBox<StepRegistry>
    /// The instance holding the leases; set by `start`.
    private var owner: UUID?
    /// A command (not a server) runs only its own job.
    private var onlyJob: UUID?
    private var running: [UUID: RunningStep] = [:]
    /// Jobs this instance marked running while it runs steps of theirs: later claims of their
    /// steps skip that statement.
    private var markedRunning: Set<UUID> = []
    private var loop: Task<Void, Never>?
    private var listening: Task<Void, Never>?
    /// The loop waiting for a wake-up or its next poll.
    private var nap: CheckedContinuation<Void, Never>?
    private var wakeRequested = false
    /// Cancel flags, lost and released leases are to be looked for at the next round.
    private var lookRequested = false
    private var lastRenewal = ContinuousClock.now
    /// When cancel flags, lost leases and expired leases were last looked for.
    private var lastLook = ContinuousClock.now - .seconds(60)

    /// `claims` defaults to `database`; `wakeups` is nil where no other instance can share the
    /// database (SQLite). The engine runs on `eventLoop`, best the one of `claims`.
    init(
        database: any Database, claims: (any Database)? = nil, eventLoop: any EventLoop, wakeups: JobWakeups? = nil,
        logger: Logger,
        operations: VMOperations, concurrency: Int, perConnection: Int, registry: StepRegistry = .standard,
        timing: Timing = Timing(), afterStepWork: @escaping @Sendable () -> Void = {}
    ) {
        self.database = database
        self.claims = claims ?? database
        executor = eventLoop.executor
        self.eventLoop = eventLoop
        self.wakeups = wakeups
        self.logger = logger
        self.operations = operations
        perInstance = concurrency
        self.perConnection = perConnection
        self.registry = NIOLockedValueBox(registry)
        self.timing = timing
        self.afterStepWork = afterStepWork
    }

    nonisolated var unownedExecutor: UnownedSerialExecutor {
        executor.asUnownedSerialExecutor()
    }

    /// Adds a kind (modules with their own kinds, tests) before steps of it are submitted.
    nonisolated func register<Kind: StepKind>(_ kind: Kind) {
        registry.withLockedValue { $0.register(kind) }
    }

    /// Starts claiming and running steps as instance `owner`; with `onlyJob`, only that job's
    /// (a command that runs its own job and leaves the rest to the servers).
    func start(owner: UUID, onlyJob: UUID? = nil) {
        guard loop == nil else { return }
        self.owner = owner
        self.onlyJob = onlyJob
        loop = Task { await self.run() }
        if let wakeups, onlyJob == nil {
            listening = Task { [weak self] in
                await wakeups.run { [weak self] signal in await self?.notice(signal) }
            }
        }
    }

    /// Stops running steps and gives their leases back (their kinds' rules decide how another
    /// instance resumes them); nothing is marked failed or interrupted.
    func stop() async {
        listening?.cancel()
        await listening?.value
        listening = nil
        loop?.cancel()
        wake()
        await loop?.value
        loop = nil
        for id in running.keys { running[id]?.stop = .shutdown }
        let tasks = running.values.map(\.task)
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    /// Records a job with its steps; an instance runs them as soon as it claims them. Off the
    /// engine's event loop: encoding hundreds of steps is no work for it.
    nonisolated func submit(kind: String, title: String, by actor: AuditLog.Actor, steps plans: [StepPlan]) async throws -> UUID {
        try registry.withLockedValue { try $0.validate(plans) }
        let job = Job()
        job.kind = kind
        job.title = title
        job.status = .queued
        job.operatorName = actor.name
        job.operatorIP = actor.ip
        job.summary = "\(plans.count) step\(plans.count == 1 ? "" : "s") queued"
        job.cancelRequested = false
        try await database.transaction { transaction in
            try await job.create(on: transaction)
            let steps = try plans.enumerated().map { position, plan in
                let step = JobStep()
                step.$job.id = try job.requireID()
                step.position = position
                step.title = plan.title
                step.vmName = plan.vmName
                step.vmRole = plan.vmRole
                step.kind = plan.kind
                step.parameters = plan.parameters
                step.phase = plan.phase
                step.connectionID = plan.connectionID
                step.status = .queued
                step.attempts = 0
                step.log = ""
                return step
            }
            // One statement for all steps: a 500-VM job is queued in one round trip.
            if !steps.isEmpty { try await steps.create(on: transaction) }
        }
        let jobID = try job.requireID()
        if plans.isEmpty { try await JobStepRows(database).finishJobIfDone(jobID) }
        await wake()
        return jobID
    }

    /// Asks a job to stop: queued steps never start, and the instance running a step sees the
    /// flag within a poll (at once when it is this one). Audited as the person's request.
    func cancel(_ jobID: UUID, by actor: AuditLog.Actor) async throws {
        guard let job = try await Job.find(jobID, on: database) else { throw FlotillaError.notFound("no such job") }
        guard !job.status.isFinished else { throw FlotillaError.conflict("the job has already finished") }
        job.cancelRequested = true
        try await job.save(on: database)
        let rows = try JobStepRows(database)
        try await rows.endQueued(of: jobID, as: .cancelled, line: "cancelled before it started")
        for (id, step) in running where step.jobID == jobID { stopLocally(id, .cancelRequested) }
        await AuditLog.record(
            .operation, action: "job.cancel", result: .success, details: "asked job \(jobID) to stop",
            by: actor, on: database, logger: logger)
        try await rows.finishJobIfDone(jobID)
    }

    /// Waits until a job has finished, whichever instance runs it (tests and commands).
    nonisolated func waitUntilFinished(_ jobID: UUID, timeout: Duration = .seconds(120)) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await Job.find(jobID, on: database)?.status.isFinished == false {
            guard ContinuousClock.now < deadline else { throw FlotillaError(.unavailable, "job \(jobID) did not finish in \(timeout)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    // MARK: - The loop

    private func wake() {
        wakeRequested = true
        nap?.resume()
        nap = nil
    }

    /// Rounds one after the other, on this actor: no round waits for a thread of the
    /// cooperative pool.
    private func run() async {
        while await tick() {}
    }

    /// Another instance changed the queue (`nil`: listening began, anything may have changed).
    private func notice(_ signal: JobWakeups.Signal?) {
        switch signal {
        case .queued, .ended: break
        case .released, .cancel, nil: lookRequested = true
        }
        wake()
    }

    /// One round: claim what fits, react to cancel requests and lost leases, take over expired
    /// leases, renew this instance's. False ends the loop.
    private func tick() async -> Bool {
        guard !Task.isCancelled, let owner else { return false }
        wakeRequested = false
        var claimedFully = false
        do {
            let rows = try JobStepRows(claims)
            // The claim first: the round that a step's end started fills its slot without
            // waiting for the looks and renewals below (they came first and made the slowest
            // claims, one round a second).
            let capacity = perInstance - leased.count
            let started = ContinuousClock.now
            let claimed = try await rows.claim(
                limit: capacity, perConnection: perConnection, owner: owner, lease: timing.lease, onlyJob: onlyJob)
            if !claimed.isEmpty {
                // Read by scripts/bench-steps for the duration of a claim's round trips.
                logger.debug("claimed \(claimed.count) steps in \(Self.milliseconds(ContinuousClock.now - started)) ms")
            }
            for step in claimed { launch(step) }
            let unmarked = Set(claimed.map(\.jobID)).subtracting(markedRunning)
            try await rows.markJobsRunning(unmarked)
            markedRunning.formUnion(unmarked)
            claimedFully = capacity > 0 && claimed.count == capacity
            // Once a poll at most (a second while other instances' changes are heard), however
            // often finished steps wake the loop, unless a notification asks for it. Steps it
            // queued again are claimed by the next round, at once.
            let lookEvery = listening == nil ? timing.poll : timing.lookWhileListening
            if lookRequested || ContinuousClock.now - lastLook >= lookEvery {
                lookRequested = false
                lastLook = .now
                try await watchRunning(rows)
                if onlyJob == nil, try await takeOver(rows) { wakeRequested = true }
            }
            if ContinuousClock.now - lastRenewal >= timing.renewEvery {
                lastRenewal = .now
                try await rows.renew(leased, owner: owner, lease: timing.lease)
            }
        } catch {
            guard !Task.isCancelled else { return false }
            logger.warning("job engine: \(String(reflecting: error))")
        }
        if claimedFully || wakeRequested || Task.isCancelled { return !Task.isCancelled }
        // The poll's timer wakes the loop through a task: only the poll, never a claim, waits on it.
        let poll = eventLoop.scheduleTask(in: TimeAmount(timing.poll)) { Task { await self.wake() } }
        await withCheckedContinuation { nap = $0 }
        poll.cancel()
        return !Task.isCancelled
    }

    private static func milliseconds(_ duration: Duration) -> String {
        String(format: "%.2f", Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15)
    }

    /// The steps this instance holds a lease on: running, their end not yet written.
    private var leased: [UUID] {
        running.filter { !$0.value.settled }.map(\.key)
    }

    private func watchRunning(_ rows: JobStepRows) async throws {
        let leased = leased
        guard !leased.isEmpty else { return }
        for row in try await rows.watch(leased) {
            if row.status != JobStatus.running.rawValue || row.lease_owner != owner {
                stopLocally(row.id, .leaseLost)
            } else if row.cancel_requested {
                stopLocally(row.id, .cancelRequested)
            }
        }
    }

    /// Takes over steps whose lease expired; true when it queued some again.
    private func takeOver(_ rows: JobStepRows) async throws -> Bool {
        let registry = registry.withLockedValue { $0 }
        let takenOver = try await rows.takeOverExpired(except: Array(running.keys)) { orphan in
            if orphan.cancel_requested { return .end(.cancelled, "cancelled: the job was asked to stop") }
            switch (try? registry.entry(orphan.kind))?.rerunRule {
            case .idempotent: return .requeue("queued again: running it again is safe")
            case .rerunAfterCheck: return .requeue("queued again: it checks what the cut-off run left before acting")
            case .needsAttention(let reason): return .end(.needsAttention, reason)
            case nil: return .end(.needsAttention, "no step kind '\(orphan.kind ?? "")' is registered")
            }
        }
        for orphan in takenOver.ended {
            try await rows.endQueued(
                of: orphan.job_id, afterPhase: orphan.phase, as: .cancelled, line: "skipped: an earlier step did not succeed")
            try await rows.finishJobIfDone(orphan.job_id)
        }
        for job in try await rows.cancelledJobsWithQueuedSteps() {
            try await rows.endQueued(of: job, as: .cancelled, line: "cancelled before it started")
            try await rows.finishJobIfDone(job)
        }
        return takenOver.requeued > 0
    }

    private func stopLocally(_ id: UUID, _ reason: StopReason) {
        guard running[id] != nil, running[id]?.stop == nil else { return }
        running[id]?.stop = reason
        running[id]?.task.cancel()
    }

    private func launch(_ step: JobStepRows.Claimed) {
        let task = Task<Void, Never> { [weak self] in
            guard let self else { return }
            await self.execute(step)
        }
        running[step.id] = RunningStep(jobID: step.jobID, task: task)
    }

    private func stopReason(_ id: UUID) -> StopReason? {
        running[id]?.stop
    }

    /// Writes how a step ended if this instance still holds it (false when it no longer
    /// does), over the loop's connection and on this actor: its slot is free for the next
    /// claim at once, with no wait for a thread of the cooperative pool in between.
    private func end(_ id: UUID, as status: JobStatus, line: String, attentionReason: String? = nil) async throws -> Bool {
        guard let owner else { return false }
        let kept = try await JobStepRows(claims).end(id, as: status, line: line, attentionReason: attentionReason, owner: owner)
        if kept {
            running[id]?.settled = true
            wake()
        }
        return kept
    }

    /// A step's task is over. Its slot is free for a claim now unless its end was written
    /// (`end` woke the loop then already; waking it again made one empty claim per step).
    private func ended(_ id: UUID) {
        guard let step = running.removeValue(forKey: id) else { return }
        if !running.values.contains(where: { $0.jobID == step.jobID }) { markedRunning.remove(step.jobID) }
        if !step.settled { wake() }
    }

    // MARK: - Running one step

    private enum Outcome {
        case succeeded
        case failed(String)
        case cancelled(String)
        case needsAttention(String)
        case released
        case lost
    }

    private nonisolated func execute(_ step: JobStepRows.Claimed) async {
        let outcome: Outcome
        var action = step.kind ?? "job.step"
        do {
            let entry = try registry.withLockedValue { try $0.entry(step.kind) }
            let prepared = try entry.prepare(step.parameters ?? "")
            action = prepared.action
            outcome = await attempt(step, entry: entry, work: prepared.work)
        } catch let unrunnable as UnrunnableStep {
            outcome = .needsAttention(unrunnable.reason)
        } catch {
            outcome = .failed(FlotillaError.describe(error))
        }
        afterStepWork()
        await record(step, outcome, action: action)
        await ended(step.id)
    }

    /// Runs the work, retrying kinds that allow it, and says how it ended.
    private nonisolated func attempt(
        _ step: JobStepRows.Claimed, entry: StepRegistry.Entry, work: @Sendable (StepContext) async throws -> Void
    ) async -> Outcome {
        let context = StepContext(
            stepID: step.id, database: database, logger: logger, operations: operations, isRerun: step.attempts > 1)
        for attempt in 1...entry.attemptsOnFailure {
            do {
                if let stop = await stopReason(step.id) { return outcome(of: stop) }
                try await work(context)
                return .succeeded
            } catch {
                let reason = FlotillaError.describe(error)
                if let stop = await stopReason(step.id) { return outcome(of: stop, reason) }
                guard attempt < entry.attemptsOnFailure else { return .failed(reason) }
                do {
                    try await Task.sleep(for: entry.retryDelay * attempt)
                    try await JobStepRows(database).countAttempt(step.id, line: "attempt \(attempt) failed: \(reason); trying again")
                } catch {
                    if let stop = await stopReason(step.id) { return outcome(of: stop) }
                    return .failed(reason)
                }
            }
        }
        return .failed("no attempt was made")
    }

    private nonisolated func outcome(of stop: StopReason, _ reason: String? = nil) -> Outcome {
        switch stop {
        case .cancelRequested: .cancelled(reason.map { "cancelled: \($0)" } ?? "cancelled before it started")
        case .shutdown: .released
        case .leaseLost: .lost
        }
    }

    /// Writes how the step ended (only while this instance still holds it), its audit entry,
    /// and ends the job if it was the last step.
    private nonisolated func record(_ step: JobStepRows.Claimed, _ outcome: Outcome, action: String) async {
        do {
            let rows = try JobStepRows(database)
            guard let owner = await owner else { return }
            let status: JobStatus
            let details: String
            let kept: Bool
            switch outcome {
            case .lost:
                return
            case .released:
                try await rows.release(step.id, owner: owner, reason: "released: this instance shut down; another one resumes it")
                return
            case .succeeded:
                status = .succeeded
                details = "\(step.title): done"
                kept = try await end(step.id, as: status, line: "done")
            case .failed(let reason):
                status = .failed
                details = "\(step.title) failed: \(reason)"
                kept = try await end(step.id, as: status, line: "failed: \(reason)")
            case .cancelled(let line):
                status = .cancelled
                details = "\(step.title): cancelled"
                kept = try await end(step.id, as: status, line: line)
            case .needsAttention(let reason):
                status = .needsAttention
                details = "\(step.title) needs attention: \(reason)"
                kept = try await end(step.id, as: status, line: "needs attention: \(reason)", attentionReason: reason)
            }
            guard kept else { return }
            let job = try await Job.find(step.jobID, on: database)
            await AuditLog.record(
                status == .succeeded ? .operation : status == .cancelled ? .operation : .error, action: action,
                result: status == .succeeded ? .success : .failure, details: details, vmName: step.vmName, vmRole: step.vmRole,
                by: AuditLog.Actor(name: job?.operatorName, ip: job?.operatorIP), on: database, logger: logger)
            if status == .cancelled {
                try await rows.endQueued(of: step.jobID, as: .cancelled, line: "cancelled before it started")
            } else if status != .succeeded {
                try await rows.endQueued(
                    of: step.jobID, afterPhase: step.phase, as: .cancelled, line: "skipped: an earlier step did not succeed")
            }
            try await rows.finishJobIfDone(step.jobID)
        } catch {
            logger.error("could not record how step \(step.id) ended: \(String(reflecting: error))")
        }
    }
}
