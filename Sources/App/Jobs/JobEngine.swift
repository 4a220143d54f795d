import Fluent
import RemoteShell
import Vapor

/// One step of a job as planned: what it does to which VM, and how.
struct StepPlan: Sendable {
    /// The audit log's action name, e.g. `vm.create`.
    var action: String
    var title: String
    var vmName: String?
    var vmRole: String?
    /// Steps of one phase run in parallel; a phase starts when the previous one succeeded.
    var phase: Int = 0
    /// The vSphere connection the step works on, for the per-connection limit.
    var connectionID: UUID?
    /// Whether running the step again after a failure is harmless.
    var retryable = false
    var work: @Sendable (StepContext) async throws -> Void
}

/// What a running step may do besides its work: write to its log.
struct StepContext: Sendable {
    let stepID: UUID
    let database: any Database
    let logger: Logger

    /// Appends a line to the step's log (seen live in the job page).
    func log(_ line: String) async {
        do {
            guard let step = try await JobStep.find(stepID, on: database) else { return }
            step.appendLog(line)
            try await step.save(on: database)
        } catch {
            logger.warning("could not write the log of step \(stepID): \(String(reflecting: error))")
        }
    }
}

/// Runs jobs (SPEC BEY-1): persisted with one step per VM, a worker limit overall and per
/// vSphere connection, retries of safe steps, cancellation, and an audit entry per step.
actor JobEngine {
    private let database: any Database
    private let logger: Logger
    private let overall: AsyncSemaphore
    private let perConnectionLimit: Int
    private var connectionLimiters: [UUID: AsyncSemaphore] = [:]
    private var running: [UUID: Task<Void, Never>] = [:]
    /// Pause between attempts of a retried step.
    private let retryDelay: Duration
    /// How often a running job's record is read for a cancel request (which may come from
    /// another instance sharing the database).
    private let cancelPollInterval: Duration
    /// Set by `cancelAll` at shutdown: steps then stop as interrupted, not as cancelled by a person.
    private var shutdownReason: String?

    init(
        database: any Database, logger: Logger, concurrency: Int, perConnection: Int, retryDelay: Duration = .seconds(2),
        cancelPollInterval: Duration = .seconds(1)
    ) {
        self.database = database
        self.logger = logger
        overall = AsyncSemaphore(limit: concurrency)
        perConnectionLimit = perConnection
        self.retryDelay = retryDelay
        self.cancelPollInterval = cancelPollInterval
    }

    /// Marks jobs left unfinished by a previous run of the server; nothing stays "running".
    static func interruptUnfinished(on database: any Database) async throws {
        let reason = "the server stopped while this was running"
        for job in try await Job.query(on: database).filter(\.$status ~~ [.queued, .running]).all() {
            job.status = .interrupted
            job.summary = reason
            job.finishedAt = Date()
            try await job.save(on: database)
        }
        for step in try await JobStep.query(on: database).filter(\.$status ~~ [.queued, .running]).all() {
            step.status = .interrupted
            step.log += "interrupted: \(reason)\n"
            step.finishedAt = Date()
            try await step.save(on: database)
        }
    }

    /// Records a job and starts it; returns at once with the job's ID.
    func submit(kind: String, title: String, by actor: AuditLog.Actor, steps plans: [StepPlan]) async throws -> UUID {
        let job = Job()
        job.kind = kind
        job.title = title
        job.status = .queued
        job.operatorName = actor.name
        job.operatorIP = actor.ip
        job.summary = "\(plans.count) step\(plans.count == 1 ? "" : "s") queued"
        job.cancelRequested = false
        let stepIDs = try await database.transaction { transaction in
            try await job.create(on: transaction)
            var stepIDs: [UUID] = []
            for (position, plan) in plans.enumerated() {
                let step = JobStep()
                step.$job.id = try job.requireID()
                step.position = position
                step.title = plan.title
                step.vmName = plan.vmName
                step.vmRole = plan.vmRole
                step.status = .queued
                step.attempts = 0
                step.log = ""
                try await step.create(on: transaction)
                stepIDs.append(try step.requireID())
            }
            return stepIDs
        }
        let jobID = try job.requireID()
        let planned = Array(zip(stepIDs, plans))
        running[jobID] = Task { [weak self] in
            await self?.execute(jobID: jobID, steps: planned, actor: actor)
        }
        watchForCancelRequest(jobID)
        return jobID
    }

    /// Asks a job to stop: running steps are cancelled, queued ones never start. The request is
    /// audited as the person's.
    func cancel(_ jobID: UUID, by actor: AuditLog.Actor) async throws {
        guard let job = try await Job.find(jobID, on: database) else { throw FlotillaError.notFound("no such job") }
        guard !job.status.isFinished else { throw FlotillaError.conflict("the job has already finished") }
        job.cancelRequested = true
        try await job.save(on: database)
        running[jobID]?.cancel()
        await AuditLog.record(
            .operation, action: "job.cancel", result: .success, details: "asked job \(jobID) to stop",
            by: actor, on: database, logger: logger)
    }

    /// Stops every running job at shutdown; their steps and the jobs end as interrupted ("the
    /// server shut down") instead of staying "running" until the next start.
    func cancelAll() async {
        shutdownReason = "the server shut down"
        for task in running.values { task.cancel() }
        for task in running.values { await task.value }
    }

    /// Cancels the job here when its record asks for it: `cancel` sets the flag, and the
    /// request may have reached another instance sharing the database.
    private func watchForCancelRequest(_ jobID: UUID) {
        Task { [weak self, database, cancelPollInterval] in
            while await self?.isRunning(jobID) == true {
                try? await Task.sleep(for: cancelPollInterval)
                if (try? await Job.find(jobID, on: database))?.cancelRequested == true {
                    await self?.cancelRunning(jobID)
                    return
                }
            }
        }
    }

    private func isRunning(_ jobID: UUID) -> Bool {
        running[jobID] != nil
    }

    private func cancelRunning(_ jobID: UUID) {
        running[jobID]?.cancel()
    }

    /// Waits for a job started by this engine (tests and commands).
    func waitUntilFinished(_ jobID: UUID) async {
        await running[jobID]?.value
    }

    private func limiter(for connectionID: UUID) -> AsyncSemaphore {
        if let existing = connectionLimiters[connectionID] { return existing }
        let limiter = AsyncSemaphore(limit: perConnectionLimit)
        connectionLimiters[connectionID] = limiter
        return limiter
    }

    private func execute(jobID: UUID, steps: [(UUID, StepPlan)], actor: AuditLog.Actor) async {
        await update(jobID) { job in
            job.status = .running
            job.startedAt = Date()
        }
        var outcomes: [JobStatus] = []
        let phases = Dictionary(grouping: steps, by: { $0.1.phase }).sorted { $0.key < $1.key }
        for (_, phaseSteps) in phases {
            if Task.isCancelled || outcomes.contains(where: { $0 != .succeeded }) {
                let (status, reason) =
                    Task.isCancelled
                    ? stopped("cancelled before it started")
                    : (.cancelled, "skipped: an earlier step did not succeed")
                for (stepID, _) in phaseSteps {
                    await finish(stepID, status: status, line: reason)
                    outcomes.append(status)
                }
                continue
            }
            let limiters = phaseSteps.map { $0.1.connectionID.map(limiter(for:)) }
            let results = await withTaskGroup(of: JobStatus.self) { group in
                for ((stepID, plan), connectionLimiter) in zip(phaseSteps, limiters) {
                    group.addTask { [self] in
                        // A step cancelled while it waits for a worker ends at once.
                        do {
                            try await self.overall.acquire()
                        } catch {
                            return await self.run(stepID: stepID, plan: plan, actor: actor)
                        }
                        do {
                            try await connectionLimiter?.acquire()
                        } catch {
                            await self.overall.release()
                            return await self.run(stepID: stepID, plan: plan, actor: actor)
                        }
                        let status = await self.run(stepID: stepID, plan: plan, actor: actor)
                        await connectionLimiter?.release()
                        await self.overall.release()
                        return status
                    }
                }
                var collected: [JobStatus] = []
                for await status in group { collected.append(status) }
                return collected
            }
            outcomes += results
        }
        let succeeded = outcomes.filter { $0 == .succeeded }.count
        let failed = outcomes.filter { $0 == .failed }.count
        let wasCancelled = Task.isCancelled || outcomes.contains(.cancelled) && failed == 0
        let interrupted = outcomes.contains(.interrupted)
        let status: JobStatus = interrupted ? .interrupted : failed > 0 ? .failed : (wasCancelled ? .cancelled : .succeeded)
        let cancelled = outcomes.count - succeeded - failed
        let summary =
            "\(succeeded) of \(outcomes.count) steps succeeded"
            + (failed > 0 ? ", \(failed) failed" : "")
            + (cancelled > 0 ? ", \(cancelled) \(interrupted ? "interrupted" : "cancelled")" : "")
            + (interrupted ? ": \(shutdownReason ?? "interrupted")" : "")
        await update(jobID) { job in
            job.status = status
            job.finishedAt = Date()
            job.summary = summary
        }
        running[jobID] = nil
    }

    /// Runs one step with its retries; the step's own task is cancelled with the job.
    private func run(stepID: UUID, plan: StepPlan, actor: AuditLog.Actor) async -> JobStatus {
        let context = StepContext(stepID: stepID, database: database, logger: logger)
        if Task.isCancelled {
            let (status, reason) = stopped("cancelled before it started")
            await finish(stepID, status: status, line: reason)
            return status
        }
        let attempts = plan.retryable ? 3 : 1
        for attempt in 1...attempts {
            await updateStep(stepID) { step in
                step.status = .running
                step.attempts = attempt
                if step.startedAt == nil { step.startedAt = Date() }
            }
            do {
                try await plan.work(context)
                await finish(stepID, status: .succeeded, line: "done")
                await AuditLog.record(
                    .operation, action: plan.action, result: .success, details: "\(plan.title): done",
                    vmName: plan.vmName, vmRole: plan.vmRole, by: actor, on: database, logger: logger)
                return .succeeded
            } catch {
                let reason = FlotillaError.describe(error)
                if Task.isCancelled || error is CancellationError {
                    let (status, line) = stopped("cancelled: \(reason)")
                    await finish(stepID, status: status, line: line)
                    await AuditLog.record(
                        .operation, action: plan.action, result: .failure, details: "\(plan.title): \(status.rawValue)",
                        vmName: plan.vmName, vmRole: plan.vmRole, by: actor, on: database, logger: logger)
                    return status
                }
                if attempt < attempts {
                    await context.log("attempt \(attempt) failed: \(reason); trying again")
                    try? await Task.sleep(for: retryDelay * attempt)
                    continue
                }
                await finish(stepID, status: .failed, line: "failed: \(reason)")
                await AuditLog.record(
                    .error, action: plan.action, result: .failure, details: "\(plan.title) failed: \(reason)",
                    vmName: plan.vmName, vmRole: plan.vmRole, by: actor, on: database, logger: logger)
                return .failed
            }
        }
        return .failed
    }

    /// How a step stopped by cancellation ends: interrupted at shutdown, else cancelled with `line`.
    private func stopped(_ line: String) -> (JobStatus, String) {
        guard let shutdownReason else { return (.cancelled, line) }
        return (.interrupted, "interrupted: \(shutdownReason)")
    }

    private func finish(_ stepID: UUID, status: JobStatus, line: String) async {
        await updateStep(stepID) { step in
            step.status = status
            step.finishedAt = Date()
            step.appendLog(line)
        }
    }

    private func updateStep(_ stepID: UUID, _ change: @Sendable (JobStep) -> Void) async {
        do {
            guard let step = try await JobStep.find(stepID, on: database) else { return }
            change(step)
            try await step.save(on: database)
        } catch {
            logger.error("could not update job step \(stepID): \(String(reflecting: error))")
        }
    }

    private func update(_ jobID: UUID, _ change: @Sendable (Job) -> Void) async {
        do {
            guard let job = try await Job.find(jobID, on: database) else { return }
            change(job)
            try await job.save(on: database)
        } catch {
            logger.error("could not update job \(jobID): \(String(reflecting: error))")
        }
    }
}
