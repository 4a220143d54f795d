import Fluent
import Foundation

/// `config.stage` (SPEC CFG-3): one target VM's new files written beside the old ones and
/// validated. All stage steps of a job form its first phase, so one file that fails validation
/// on any VM leaves every VM's files untouched (the apply phase never starts).
struct ConfigStageStep: StepKind {
    struct Parameters: Codable, Sendable {
        var runID: UUID
        var vmID: UUID
    }

    static let name = "config.stage"
    /// Staging writes only the staged copies; doing it again replaces them.
    static let rerunRule = RerunRule.idempotent

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        let operations = context.operations
        let plan = try await ConfigurationPlan.load(
            runID: parameters.runID, vmID: parameters.vmID, database: context.database, secrets: operations.secrets)
        let guest = try await plan.guestFiles(shell: operations.shell, login: operations.login)
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
            try? await guest.discardStaged(plan.files.map(\.file.path))
            throw FlotillaError.conflict("\(plan.vm.hostName): \(FlotillaError.describe(error)); nothing was replaced")
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
        if let failure = await restartAndGate(plan.restart, ports: plan.healthPorts, guest: guest, context: context) {
            await context.log("unhealthy: \(failure); putting the previous files back")
            try await guest.revert(changed, stamp: stamp)
            let after = await restartAndGate(plan.restart, ports: plan.healthPorts, guest: guest, context: context)
            let outcome = after.map { "and the services are still unhealthy: \($0)" } ?? "and the services run again"
            throw FlotillaError.conflict(
                "\(plan.vm.hostName): \(failure); the previous \(changed.joined(separator: ", ")) \(changed.count == 1 ? "is" : "are") back \(outcome)"
            )
        }
        try await record(plan, database: context.database)
        await context.log(plan.restart.isEmpty ? "no service to restart" : "healthy: \(plan.restart.joined(separator: ", "))")
    }

    /// Restarts each service once, then waits until all run and every health port answers for
    /// two polls in a row. Returns why not, or nil when healthy.
    private func restartAndGate(_ services: [String], ports: [Int], guest: GuestConfigFiles, context: StepContext) async -> String? {
        for service in services {
            do {
                try await guest.restart(service)
                await context.log("restarted \(service)")
            } catch {
                return "restarting \(service) failed: \(FlotillaError.describe(error))"
            }
        }
        guard !services.isEmpty || !ports.isEmpty else { return nil }
        let deadline = ContinuousClock.now + Self.healthGate
        var healthyPolls = 0
        var reason = "no answer"
        while ContinuousClock.now < deadline {
            do {
                if let problem = try await guest.unhealthy(services: services, ports: ports) {
                    reason = problem
                    healthyPolls = 0
                } else {
                    healthyPolls += 1
                    if healthyPolls == 2 { return nil }
                }
            } catch {
                reason = FlotillaError.describe(error)
                healthyPolls = 0
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
        return "not healthy within \(Self.healthGate): \(reason)"
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
