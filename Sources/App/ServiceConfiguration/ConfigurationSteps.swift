import Fluent
import Foundation

/// `config.stage` (SPEC CFG-3): one target VM's new files written beside the old ones and
/// validated. All stage steps of a job form its first phase, so one file that fails validation
/// on any VM leaves every VM's files untouched (the apply phase never starts), and no VM keeps
/// staged copies either: the failing step removes its own at once, then those of every sibling
/// that ended; a sibling still running when a failure is logged removes its own when it ends.
struct ConfigStageStep: StepKind {
    struct Parameters: Codable, Sendable {
        var runID: UUID
        var vmID: UUID
    }

    static let name = "config.stage"
    /// Staging writes only the staged copies; doing it again replaces them.
    static let rerunRule = RerunRule.idempotent
    /// The log line of a stage step that failed: its siblings read it.
    static let failureLine = "staging failed: no VM of this job gets its new files"
    /// How long a failed step waits for running siblings to end before it removes their staged files.
    static let siblingPatience: Duration = .seconds(120)

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        let operations = context.operations
        let plan = try await ConfigurationPlan.load(
            runID: parameters.runID, vmID: parameters.vmID, database: context.database, secrets: operations.secrets)
        let guest = try await plan.guestFiles(shell: operations.shell, login: operations.login)
        let paths = plan.files.map(\.file.path)
        do {
            for planned in plan.files {
                let changed = try await guest.stage(
                    planned.file.path, content: planned.guestText, owner: planned.file.owner, mode: planned.file.mode)
                if let command = planned.file.validate { try await guest.validate(planned.file.path, command: command) }
                await context.log(
                    "\(planned.file.path): \(changed ? "new version staged" : "unchanged")\(planned.file.validate == nil ? "" : ", validated")"
                )
            }
        } catch {
            try? await guest.discardStaged(paths)
            await context.log(Self.failureLine)
            await discardSiblingsStaging(context: context)
            throw FlotillaError.conflict("\(plan.vm.hostName): \(FlotillaError.describe(error)); nothing was replaced")
        }
        if let failed = try await siblings(context).first(where: { $0.status == .failed || $0.log.contains(Self.failureLine) }) {
            try await guest.discardStaged(paths)
            await context.log("staged files removed: \(failed.vmName ?? "another VM")'s files did not stage")
        }
    }

    /// The other stage steps of this step's job.
    private func siblings(_ context: StepContext) async throws -> [JobStep] {
        guard let own = try await JobStep.find(context.stepID, on: context.database) else { return [] }
        return try await JobStep.query(on: context.database).filter(\.$job.$id == own.$job.id).filter(\.$kind == Self.name)
            .filter(\.$id != context.stepID).all()
    }

    /// Removes the staged files of every sibling once it has ended (a running one that logged its
    /// own failure removes its own), waiting at most `siblingPatience`.
    private func discardSiblingsStaging(context: StepContext) async {
        let deadline = ContinuousClock.now + Self.siblingPatience
        var done = Set<UUID>()
        while ContinuousClock.now < deadline {
            guard let siblings = try? await siblings(context) else { return }
            var waiting = false
            for sibling in siblings where !done.contains(sibling.id ?? UUID()) {
                if sibling.status == .running && !sibling.log.contains(Self.failureLine) {
                    waiting = true
                    continue
                }
                if let id = sibling.id { done.insert(id) }
                guard sibling.status.isFinished, sibling.status != .cancelled, let text = sibling.parameters,
                    let parameters = try? JSONDecoder().decode(Parameters.self, from: Data(text.utf8))
                else { continue }
                do {
                    let plan = try await ConfigurationPlan.load(
                        runID: parameters.runID, vmID: parameters.vmID, database: context.database,
                        secrets: context.operations.secrets)
                    try await plan.guestFiles(shell: context.operations.shell, login: context.operations.login)
                        .discardStaged(plan.files.map(\.file.path))
                    await context.log("removed the staged files on \(plan.vm.hostName)")
                } catch {
                    await context.log("could not remove the staged files on \(sibling.vmName ?? "a VM"): \(FlotillaError.describe(error))")
                }
            }
            guard waiting else { return }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }
}

/// `config.apply` (SPEC CFG-3, CFG-5): one target VM's staged files put in place atomically, the
/// previous versions kept (last 5), the services of changed files restarted once, then a health
/// gate of up to 30 s; an unhealthy VM gets its previous files back and its services restarted,
/// and the step fails naming both. Nothing changed → nothing restarted.
struct ConfigApplyStep: StepKind {
    struct Parameters: Codable, Sendable {
        var runID: UUID
        var vmID: UUID
    }

    static let name = "config.apply"
    /// Cut off midway, the guest may hold some new files and not others: a person looks first.
    static let rerunRule = RerunRule.needsAttention(
        "the configuration was cut off while files were being replaced; check the VM and configure it again")

    /// How long the services have to become healthy after a restart.
    static let healthGate: Duration = .seconds(30)

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        let operations = context.operations
        let plan = try await ConfigurationPlan.load(
            runID: parameters.runID, vmID: parameters.vmID, database: context.database, secrets: operations.secrets)
        let guest = try await plan.guestFiles(shell: operations.shell, login: operations.login)
        let stamp = Self.stamp(Date())
        let paths = plan.files.map(\.file.path)
        let changed = try await guest.replace(paths, stamp: stamp)
        guard !changed.isEmpty else {
            try await record(plan, database: context.database)
            await context.log("every file was already up to date; nothing restarted")
            return
        }
        await context.log("replaced \(changed.joined(separator: ", ")) (previous versions kept as *.\(stamp))")
        if let failure = await restartAndGate(plan, guest: guest, context: context) {
            await context.log("unhealthy: \(failure); putting the previous files back")
            try await guest.revert(changed, stamp: stamp)
            let after = await restartAndGate(plan, guest: guest, context: context)
            let outcome = after.map { "and the services are still unhealthy: \($0)" } ?? "and the services run again"
            throw FlotillaError.conflict(
                "\(plan.vm.hostName): \(failure); the previous \(changed.joined(separator: ", ")) \(changed.count == 1 ? "is" : "are") back \(outcome)"
            )
        }
        try await record(plan, database: context.database)
        await context.log(plan.restart.isEmpty ? "no service to restart" : "healthy: \(plan.restart.joined(separator: ", "))")
    }

    /// Restarts each service once, then gates on their health (`ServiceHealthGate`: the monitor
    /// agent's state when it reports on them, else the profile's check). Returns why not healthy,
    /// or nil when healthy.
    private func restartAndGate(_ plan: ConfigurationPlan, guest: GuestConfigFiles, context: StepContext) async -> String? {
        for service in plan.restart {
            do {
                try await guest.restart(service)
                await context.log("restarted \(service)")
            } catch {
                return "restarting \(service) failed: \(FlotillaError.describe(error))"
            }
        }
        guard !plan.restart.isEmpty || !plan.healthPorts.isEmpty, let vmID = plan.vm.id else { return nil }
        let restartedAt = Date()
        let (services, ports) = (plan.restart, plan.healthPorts)
        let gate = ServiceHealthGate(
            database: context.database, vmID: vmID, services: services,
            profileCheck: { try await guest.unhealthy(services: services, ports: ports) }, timeout: Self.healthGate)
        if let source = try? await gate.source() { await context.log("health gate: \(source.rawValue)") }
        return await gate.wait(restartedAt: restartedAt)
    }

    /// Notes what was written, for the drift check.
    private func record(_ plan: ConfigurationPlan, database: any Database) async throws {
        let vmID = try plan.vm.requireID()
        for planned in plan.files {
            let row =
                try await AppliedConfigurationFile.query(on: database).filter(\.$vmID == vmID).filter(\.$path == planned.file.path).first()
                ?? AppliedConfigurationFile()
            row.vmID = vmID
            row.path = planned.file.path
            row.profileID = try plan.record.requireID()
            row.version = plan.run.version
            row.runID = try plan.run.requireID()
            row.sha256 = ConfigurationDrift.digest(planned.guestText)
            row.appliedAt = Date()
            row.drift = nil
            row.driftCheckedAt = nil
            try await row.save(on: database)
        }
    }

    /// A history suffix that sorts by time: `20261203T142600.123Z`.
    static func stamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss.SSS'Z'"
        return formatter.string(from: date)
    }
}
