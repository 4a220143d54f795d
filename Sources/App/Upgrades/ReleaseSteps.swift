import Fluent
import Foundation
import Vapor

/// The upgrade module's step kinds (issue 12 §4), registered with the job engine by
/// `UpgradeSteps.register(on:)` because halting a rollout notifies through the application's
/// mail settings.
enum UpgradeSteps {
    static func register(on app: Application) {
        let runtime = UpgradeRuntime { event in
            do {
                try await app.notifications.publish(event)
            } catch {
                app.logger.warning("could not publish the halted rollout: \(String(reflecting: error))")
            }
        }
        let jobs = app.flotilla.jobs
        jobs.register(ReleaseStageStep(runtime: runtime))
        jobs.register(ReleaseSwitchStep(runtime: runtime))
        jobs.register(ReleaseGateStep(runtime: runtime))
        jobs.register(ReleaseRollbackStep(runtime: runtime))
    }
}

/// `release.stage`: the checked tarball unpacked into a new release directory on one VM and
/// built there; nothing goes live. A failure halts the rollout before any switch (the other
/// VMs still stage) and is reported per VM. A cut-off run is resumed: a release whose REVISION
/// file exists is complete and kept.
struct ReleaseStageStep: StepKind {
    struct Parameters: Codable, Sendable {
        var rolloutID: UUID
        var applicationID: UUID
        var vmID: UUID
        var revision: String
        var releaseName: String
        /// The fetched tarball on the platform; fetched again (once per instance) when missing.
        var tarballPath: String
    }

    static let name = "release.stage"
    static let rerunRule = RerunRule.rerunAfterCheck
    let runtime: UpgradeRuntime

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        let row = try await RolloutVMs.row(parameters.rolloutID, parameters.vmID, on: context.database)
        do {
            let application = try await runtime.application(parameters.applicationID, on: context.database)
            let tarball = try await ReleaseCache.shared.tarball(
                at: parameters.tarballPath, revision: parameters.revision, application: application, secrets: context.operations.secrets)
            let (vm, guest) = try await runtime.releases(of: parameters.vmID, context: context)
            let output = try await guest.stage(
                tarball: tarball, deployDirectory: application.deployDirectory, name: parameters.releaseName,
                revision: parameters.revision, buildCommand: application.buildCommand, kept: application.releasesKept)
            for line in output.split(separator: "\n") { await context.log("\(vm.hostName): \(line)") }
            row.state = .staged
            try await row.save(on: context.database)
        } catch {
            if await context.wasCutOff() { throw error }
            let reason = FlotillaError.describe(error)
            row.state = .stageFailed
            row.detail = String(reason.prefix(1000))
            try? await row.save(on: context.database)
            let name = try? await VM.find(parameters.vmID, on: context.database)?.hostName
            await AuditLog.record(
                .upgrade, action: "upgrade.stage", result: .failure, details: "staging \(parameters.releaseName) failed: \(reason)",
                vmName: name, by: .system, on: context.database, logger: context.logger)
            try? await runtime.halt(
                parameters.rolloutID, reason: "\(name ?? "a VM") failed to stage; nothing was switched", vmName: name ?? "?",
                markBad: false, context: context)
            throw error
        }
    }
}

/// `release.switch`: one VM of a batch onto the staged release (new `current` link renamed over
/// the old one, then the restart command). If the switch fails, or the rollout halted while it
/// ran, the VM — and every VM of its batch already switched — goes back to its earlier release.
struct ReleaseSwitchStep: StepKind {
    struct Parameters: Codable, Sendable {
        var rolloutID: UUID
        var applicationID: UUID
        var vmID: UUID
        var releaseName: String
        var batch: Int
    }

    static let name = "release.switch"
    static let rerunRule = RerunRule.rerunAfterCheck
    let runtime: UpgradeRuntime

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        let database = context.database
        let application = try await runtime.application(parameters.applicationID, on: database)
        let row = try await RolloutVMs.row(parameters.rolloutID, parameters.vmID, on: database)
        guard try await UpgradeRollout.find(parameters.rolloutID, on: database)?.state == .running else {
            throw FlotillaError.conflict("the rollout has halted; this VM stays where it was")
        }
        let (vm, guest) = try await runtime.releases(of: parameters.vmID, context: context)
        do {
            // A rerun after a cut-off switch finds current already on the new release: its
            // earlier release is the one recorded by the first run.
            let moved = try await guest.switchTo(
                parameters.releaseName, deployDirectory: application.deployDirectory, restartCommand: application.restartCommand)
            if moved.from != parameters.releaseName {
                row.fromRelease = moved.from
            } else if row.fromRelease == nil {
                row.fromRelease = try await guest.rollbackTarget(revision: nil, deployDirectory: application.deployDirectory) ?? ""
            }
            row.state = .switched
            try await row.save(on: database)
            try await runtime.recordRelease(
                vmID: parameters.vmID, applicationID: parameters.applicationID, current: parameters.releaseName,
                previous: row.fromRelease, on: database)
            await context.log("\(vm.hostName): \(row.fromRelease.map { $0.isEmpty ? "(none)" : $0 } ?? "?") → \(parameters.releaseName)")
            await AuditLog.record(
                .upgrade, action: "upgrade.switch", result: .success,
                details: "\(row.fromRelease ?? "") → \(parameters.releaseName)", vmName: vm.hostName, vmRole: vm.role.name,
                by: .system, on: database, logger: context.logger)
        } catch {
            if await context.wasCutOff() { throw error }
            let reason = FlotillaError.describe(error)
            row.state = .switchFailed
            row.detail = String(reason.prefix(1000))
            if row.fromRelease == nil {
                row.fromRelease = try? await guest.rollbackTarget(revision: nil, deployDirectory: application.deployDirectory)
            }
            try? await row.save(on: database)
            await AuditLog.record(
                .upgrade, action: "upgrade.switch", result: .failure, details: "switch to \(parameters.releaseName) failed: \(reason)",
                vmName: vm.hostName, vmRole: vm.role.name, by: .system, on: database, logger: context.logger)
            try? await runtime.halt(
                parameters.rolloutID, reason: "\(vm.hostName) failed to switch: \(reason)", vmName: vm.hostName,
                markBad: true, context: context)
            try await RolloutVMs.switchBackBatch(
                parameters.rolloutID, batch: parameters.batch, application: application, runtime: runtime, context: context)
            throw error
        }
        // Another VM of the batch failed meanwhile: this one goes back too.
        if try await UpgradeRollout.find(parameters.rolloutID, on: database)?.state != .running {
            await context.log(await runtime.switchBack(row, application: application, context: context))
            throw FlotillaError.conflict("the rollout halted while \(vm.hostName) switched; it is back on its earlier release")
        }
    }
}

/// `release.gate`: waits until every VM of a batch is healthy (the application's check) within
/// its timeout. Healthy: the next batch may go (after the pause), or the rollout succeeded.
/// Unhealthy: the rollout halts and the whole batch goes back to its earlier release.
struct ReleaseGateStep: StepKind {
    struct Parameters: Codable, Sendable {
        var rolloutID: UUID
        var applicationID: UUID
        var batch: Int
        var batchTitle: String
        var pauseSeconds: Int
        var isLast: Bool
    }

    static let name = "release.gate"
    static let rerunRule = RerunRule.idempotent
    let runtime: UpgradeRuntime

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        let database = context.database
        let application = try await runtime.application(parameters.applicationID, on: database)
        let check = try HealthCheck(kind: application.healthKind, target: application.healthTarget)
        let rows = try await UpgradeRolloutVM.query(on: database)
            .filter(\.$rolloutID == parameters.rolloutID).filter(\.$batch == parameters.batch).all()
        let deadline = ContinuousClock.now + .seconds(application.healthTimeoutSeconds)
        // The batch's switches ended before its gate began.
        let switchedBy = Date()
        var unhealthy: [String] = []
        await withTaskGroup(of: String?.self) { group in
            for row in rows {
                group.addTask {
                    guard let found = try? await runtime.releases(of: row.vmID, context: context) else { return "\(row.vmID)" }
                    let (vm, guest) = found
                    while true {
                        if await check.isHealthy(
                            guest, vmID: row.vmID, deployDirectory: application.deployDirectory, switchedBy: switchedBy, database: database)
                        {
                            row.state = .healthy
                            try? await row.save(on: database)
                            await context.log("\(vm.hostName): healthy")
                            return nil
                        }
                        if ContinuousClock.now >= deadline || Task.isCancelled { return vm.hostName }
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
            }
            for await name in group { if let name { unhealthy.append(name) } }
        }
        if await context.wasCutOff() { throw CancellationError() }
        guard unhealthy.isEmpty else {
            let reason =
                "\(parameters.batchTitle): \(unhealthy.sorted().joined(separator: ", ")) not healthy within \(application.healthTimeoutSeconds) s"
            try await runtime.halt(
                parameters.rolloutID, reason: reason, vmName: unhealthy.sorted()[0], markBad: true, context: context)
            try await RolloutVMs.switchBackBatch(
                parameters.rolloutID, batch: parameters.batch, application: application, runtime: runtime, context: context)
            throw FlotillaError.conflict("\(reason); the batch is back on its earlier release")
        }
        await context.log("\(parameters.batchTitle): every VM healthy")
        if parameters.isLast {
            try await RolloutVMs.finish(parameters.rolloutID, context: context)
        } else if parameters.pauseSeconds > 0 {
            await context.log("pausing \(parameters.pauseSeconds) s before the next batch")
            try await Task.sleep(for: .seconds(parameters.pauseSeconds))
        }
    }
}

/// `release.rollback`: fast track (no gate) of one VM to its previous release or to the newest
/// kept release of a revision; the revision it leaves is marked bad when asked.
struct ReleaseRollbackStep: StepKind {
    struct Parameters: Codable, Sendable {
        var applicationID: UUID
        var vmID: UUID
        /// Nil: the release `current` was switched away from last.
        var revision: String?
        var markBad: Bool
        var requestedBy: String
    }

    static let name = "release.rollback"
    static let rerunRule = RerunRule.idempotent
    let runtime: UpgradeRuntime

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        let database = context.database
        let application = try await runtime.application(parameters.applicationID, on: database)
        let (vm, guest) = try await runtime.releases(of: parameters.vmID, context: context)
        let actor = AuditLog.Actor(name: parameters.requestedBy, ip: nil)
        do {
            guard let target = try await guest.rollbackTarget(revision: parameters.revision, deployDirectory: application.deployDirectory)
            else {
                throw FlotillaError.conflict(
                    parameters.revision.map { "no kept release of \($0) on \(vm.hostName)" } ?? "\(vm.hostName) has no earlier release")
            }
            let moved = try await guest.switchTo(
                target, deployDirectory: application.deployDirectory, restartCommand: application.restartCommand)
            try await runtime.recordRelease(
                vmID: parameters.vmID, applicationID: parameters.applicationID, current: target, previous: moved.from, on: database)
            await context.log("\(vm.hostName): \(moved.from) → \(target)")
            if parameters.markBad, !moved.from.isEmpty, moved.from != target {
                try await BadRevisions(database: database).mark(
                    applicationID: parameters.applicationID, revision: GuestReleases.revision(ofRelease: moved.from),
                    reason: "rolled back on \(vm.hostName)", by: parameters.requestedBy)
            }
            await AuditLog.record(
                .upgrade, action: "upgrade.rollback", result: .success, details: "\(moved.from) → \(target)", vmName: vm.hostName,
                vmRole: vm.role.name, by: actor, on: database, logger: context.logger)
        } catch {
            await AuditLog.record(
                .upgrade, action: "upgrade.rollback", result: .failure, details: FlotillaError.describe(error), vmName: vm.hostName,
                vmRole: vm.role.name, by: actor, on: database, logger: context.logger)
            throw error
        }
    }
}

extension StepContext {
    /// Whether the step was cut off because its instance is stopping or lost the step (not
    /// because a person cancelled the job): the engine gives the step back and a rerun carries
    /// on where it stood, so the rollout must not halt, switch back or mark the revision bad.
    func wasCutOff() async -> Bool {
        guard Task.isCancelled else { return false }
        // A task of its own: the lookup must run although the step's task is cancelled.
        return await Task { [database, stepID] in
            guard let step = try? await JobStep.find(stepID, on: database),
                let job = try? await Job.find(step.$job.id, on: database)
            else { return true }
            return !job.cancelRequested
        }.value
    }
}

/// The per-VM rows of a rollout.
enum RolloutVMs {
    static func row(_ rolloutID: UUID, _ vmID: UUID, on database: any Database) async throws -> UpgradeRolloutVM {
        guard let row = try await UpgradeRolloutVM.query(on: database).filter(\.$rolloutID == rolloutID).filter(\.$vmID == vmID).first()
        else { throw FlotillaError.notFound("the VM is not part of this rollout") }
        return row
    }

    /// Every VM of the batch that switched (or may have) goes back to its earlier release.
    static func switchBackBatch(
        _ rolloutID: UUID, batch: Int, application: UpgradeApplication, runtime: UpgradeRuntime, context: StepContext
    ) async throws {
        let rows = try await UpgradeRolloutVM.query(on: context.database)
            .filter(\.$rolloutID == rolloutID).filter(\.$batch == batch)
            .filter(\.$state ~~ [.switched, .switchFailed, .healthy]).all()
        await withTaskGroup(of: String.self) { group in
            for row in rows { group.addTask { await runtime.switchBack(row, application: application, context: context) } }
            for await line in group { await context.log(line) }
        }
    }

    /// The last batch was healthy: the rollout succeeded.
    static func finish(_ rolloutID: UUID, context: StepContext) async throws {
        guard let rollout = try await UpgradeRollout.find(rolloutID, on: context.database), rollout.state == .running else { return }
        rollout.state = .succeeded
        try await rollout.save(on: context.database)
        let count = try await UpgradeRolloutVM.query(on: context.database).filter(\.$rolloutID == rolloutID).count()
        await AuditLog.record(
            .upgrade, action: "upgrade.rollout", result: .success,
            details: "\(rollout.revision) is live on \(count) VM\(count == 1 ? "" : "s") (\(rollout.trigger))",
            by: AuditLog.Actor(name: rollout.trigger, ip: nil), on: context.database, logger: context.logger)
        await context.log("rollout succeeded")
    }
}
