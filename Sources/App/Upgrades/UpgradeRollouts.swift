import Fluent
import Vapor

/// Who started a rollout: a person, or a repository hook (by its name).
enum RolloutTrigger: Sendable, Equatable {
    case user(AuditLog.Actor)
    case hook(name: String)

    /// As stored on the rollout and shown in the log: `user:NAME` or `hook:NAME`.
    var label: String {
        switch self {
        case .user(let actor): "user:\(actor.name ?? "unknown")"
        case .hook(let name): "hook:\(name)"
        }
    }

    var actor: AuditLog.Actor {
        switch self {
        case .user(let actor): actor
        case .hook: AuditLog.Actor(name: label, ip: nil)
        }
    }

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.label == rhs.label }
}

/// How a rollout goes live (issue 12 §4): a canary batch, then batches, each behind the health gate.
struct RolloutPlan: Codable, Sendable, Equatable {
    /// "1" (VMs) or "10%".
    var canary: String = "1"
    /// "5" (VMs) or "25%".
    var batchSize: String = "25%"
    var pauseSeconds: Int = 5

    static let standard = RolloutPlan()

    /// The VMs in batches: the canary first, then batches of the given size.
    func batches<T>(_ items: [T]) throws -> [[T]] {
        guard !items.isEmpty else { return [] }
        guard (0...3600).contains(pauseSeconds) else { throw FlotillaError.validation("the pause is 0 to 3600 seconds") }
        let canaryCount = min(items.count, try Self.count(canary, of: items.count, field: "canary"))
        var batches = [Array(items.prefix(canaryCount))]
        var rest = items.dropFirst(canaryCount)
        let size = try Self.count(batchSize, of: items.count, field: "batch size")
        while !rest.isEmpty {
            batches.append(Array(rest.prefix(size)))
            rest = rest.dropFirst(size)
        }
        return batches
    }

    /// A count ("3") or a percentage of `total` ("25%", at least 1 VM).
    private static func count(_ text: String, of total: Int, field: String) throws -> Int {
        let value = text.trimmingCharacters(in: .whitespaces)
        if value.hasSuffix("%"), let percent = Int(value.dropLast()), (1...100).contains(percent) {
            return max(1, total * percent / 100)
        }
        if let count = Int(value), count >= 1 { return count }
        throw FlotillaError.validation("the \(field) is a number of VMs (1 or more) or a percentage such as 25%")
    }
}

/// What to roll out where, and who asks (`UpgradeRollouts.start`).
struct RolloutRequest: Sendable {
    var applicationID: UUID
    var environmentID: UUID
    var revision: String
    var trigger: RolloutTrigger
    /// Nil: every VM of the application's role in the environment.
    var vmIDs: [UUID]? = nil
    var plan: RolloutPlan = .standard
    /// A revision marked bad is refused unless a person says they mean it (which clears the mark).
    var allowBadRevision: Bool = false
}

/// Starts upgrades and rollbacks as jobs (issue 12 §2, §4). 12B's hooks call `start` too.
struct UpgradeRollouts: Sendable {
    let database: any Database
    let secrets: SecretBox
    let jobs: JobEngine
    let dataDirectory: String
    let logger: Logger

    struct Started: Content {
        var rolloutID: UUID
        var jobID: UUID
        var revision: String
        var requestedRevision: String
        var vmCount: Int
        /// Size of the tarball fetched from the repository (0 when it was already fetched).
        var fetchedBytes: Int
    }

    /// Validates the revision and confirms it against the repository, fetches and checks it
    /// once, then submits one job: stage on every VM, then per batch switch and gate. Nothing
    /// touches a VM before the job runs; every refusal here is a clear error.
    func start(_ request: RolloutRequest) async throws -> Started {
        guard let application = try await UpgradeApplication.find(request.applicationID, on: database) else {
            throw FlotillaError.notFound("no such application")
        }
        guard let environment = try await Environment.find(request.environmentID, on: database) else {
            throw FlotillaError.notFound("no such environment")
        }
        let applicationID = try application.requireID()
        let location = try application.location
        do {
            try RepositoryAccess.validate(request.revision.trimmingCharacters(in: .whitespaces), for: location.kind)
        } catch let error as RepositoryError {
            throw Self.flotillaError(error)
        }
        let vms = try await targetVMs(application: application, environmentID: request.environmentID, vmIDs: request.vmIDs)
        let batches = try request.plan.batches(vms)
        let access = try application.repositoryAccess(secrets: secrets)
        let resolved: ResolvedRevision
        do {
            resolved = try await access.resolve(request.revision.trimmingCharacters(in: .whitespaces))
        } catch let error as RepositoryError {
            throw Self.flotillaError(error)
        }
        let bad = BadRevisions(database: database)
        if try await bad.isBad(applicationID: applicationID, revision: resolved.id) {
            guard request.allowBadRevision, case .user = request.trigger else {
                throw FlotillaError.conflict(
                    "revision \(resolved.id) was rolled back and is marked bad; roll it out again only on purpose")
            }
            try await bad.clear(applicationID: applicationID, revision: resolved.id)
        }
        let tarballPath = ReleaseCache.path(dataDirectory: dataDirectory, applicationID: applicationID, revision: resolved.id)
        var fetchedBytes = 0
        if !FileManager.default.fileExists(atPath: tarballPath) {
            do {
                fetchedBytes = try await ReleaseCache.fetch(access, revision: resolved.id, to: tarballPath).summary.archiveBytes
            } catch let error as RepositoryError {
                throw Self.flotillaError(error)
            }
        }

        let role = try await Role.find(application.roleID, on: database)
        let rollout = UpgradeRollout()
        rollout.applicationID = applicationID
        rollout.environmentID = request.environmentID
        rollout.requestedRevision = resolved.requested
        rollout.revision = resolved.id
        rollout.trigger = request.trigger.label
        rollout.state = .running
        let releaseName = GuestReleases.releaseName(revision: resolved.id, kind: location.kind, at: Date())
        let plans = try await database.transaction { transaction -> [StepPlan] in
            var plans: [StepPlan] = []
            try await rollout.create(on: transaction)
            let rolloutID = try rollout.requireID()
            for (index, batch) in batches.enumerated() {
                for vm in batch {
                    let row = UpgradeRolloutVM()
                    row.rolloutID = rolloutID
                    row.vmID = try vm.requireID()
                    row.batch = index
                    row.state = .queued
                    try await row.create(on: transaction)
                }
            }
            for vm in vms {
                plans.append(
                    try StepPlan(
                        ReleaseStageStep.self,
                        .init(
                            rolloutID: rolloutID, applicationID: applicationID, vmID: try vm.requireID(), revision: resolved.id,
                            releaseName: releaseName, tarballPath: tarballPath),
                        title: "stage \(releaseName) on \(vm.hostName)", vmName: vm.hostName, vmRole: role?.name, phase: 0))
            }
            for (index, batch) in batches.enumerated() {
                let title = index == 0 ? "canary" : "batch \(index)"
                for vm in batch {
                    plans.append(
                        try StepPlan(
                            ReleaseSwitchStep.self,
                            .init(
                                rolloutID: rolloutID, applicationID: applicationID, vmID: try vm.requireID(), releaseName: releaseName,
                                batch: index),
                            title: "\(title): switch \(vm.hostName) to \(releaseName)", vmName: vm.hostName, vmRole: role?.name,
                            phase: 1 + 2 * index))
                }
                plans.append(
                    try StepPlan(
                        ReleaseGateStep.self,
                        .init(
                            rolloutID: rolloutID, applicationID: applicationID, batch: index,
                            batchTitle: "\(title) (\(batch.count) VM\(batch.count == 1 ? "" : "s"))",
                            pauseSeconds: request.plan.pauseSeconds, isLast: index == batches.count - 1),
                        title: "\(title): health gate (\(batch.count) VM\(batch.count == 1 ? "" : "s"))", vmRole: role?.name,
                        phase: 2 + 2 * index))
            }
            return plans
        }
        let rolloutID = try rollout.requireID()
        let title = "Upgrade \(role?.name ?? "application") in \(environment.name) to \(resolved.requested)"
        let jobID: UUID
        do {
            jobID = try await jobs.submit(kind: "upgrade.rollout", title: title, by: request.trigger.actor, steps: plans)
        } catch {
            try? await rollout.delete(on: database)
            throw error
        }
        rollout.jobID = jobID
        try await rollout.save(on: database)
        await AuditLog.record(
            .upgrade, action: "upgrade.start", result: .success,
            details:
                "\(environment.name): \(vms.count) VM\(vms.count == 1 ? "" : "s") to \(resolved.requested) (\(resolved.id)) in \(batches.count) batch\(batches.count == 1 ? "" : "es"), by \(request.trigger.label)",
            vmRole: role?.name, by: request.trigger.actor, on: database, logger: logger)
        return Started(
            rolloutID: rolloutID, jobID: jobID, revision: resolved.id, requestedRevision: resolved.requested, vmCount: vms.count,
            fetchedBytes: fetchedBytes)
    }

    /// Fast track (issue 12 §4): VMs back to their previous release (or the newest kept release
    /// of `revision`) in one phase, without gates; the revisions they leave are marked bad.
    func rollback(
        applicationID: UUID, vmIDs: [UUID], revision: String?, markBad: Bool = true, by actor: AuditLog.Actor
    ) async throws -> UUID {
        guard let application = try await UpgradeApplication.find(applicationID, on: database) else {
            throw FlotillaError.notFound("no such application")
        }
        var wanted = revision?.trimmingCharacters(in: .whitespaces).nilIfEmptyRevision
        if let given = wanted {
            let kind = try application.location.kind
            do { try RepositoryAccess.validate(given, for: kind) } catch let error as RepositoryError {
                throw Self.flotillaError(error)
            }
            // Release directories carry a commit id's first 12 characters.
            if kind == .git {
                guard given.count >= 12, given.allSatisfy(\.isHexDigit) else {
                    throw FlotillaError.validation(
                        "roll back to a commit id (its first 12 hex digits, as the page shows, or more) or leave it empty for the previous release"
                    )
                }
                wanted = String(given.lowercased().prefix(12))
            }
        }
        guard !vmIDs.isEmpty else { throw FlotillaError.validation("choose at least one VM") }
        let vms = try await VM.query(on: database).filter(\.$id ~~ vmIDs).sort(\.$hostName).all()
        guard vms.count == Set(vmIDs).count, vms.allSatisfy({ $0.$role.id == application.roleID }) else {
            throw FlotillaError.validation("every VM must exist and have the application's role")
        }
        let role = try await Role.find(application.roleID, on: database)
        let plans = try vms.map { vm in
            try StepPlan(
                ReleaseRollbackStep.self,
                .init(
                    applicationID: applicationID, vmID: try vm.requireID(), revision: wanted, markBad: markBad,
                    requestedBy: actor.name ?? "unknown"),
                title: "roll \(vm.hostName) back to \(wanted ?? "its previous release")", vmName: vm.hostName, vmRole: role?.name)
        }
        let jobID = try await jobs.submit(
            kind: "upgrade.rollback", title: "Roll back \(vms.count) VM\(vms.count == 1 ? "" : "s") of \(role?.name ?? "?")", by: actor,
            steps: plans)
        await AuditLog.record(
            .upgrade, action: "upgrade.rollback.start", result: .success,
            details: "\(vms.count) VM\(vms.count == 1 ? "" : "s") to \(wanted ?? "their previous release") (job \(jobID))",
            vmRole: role?.name, by: actor, on: database, logger: logger)
        return jobID
    }

    /// The VMs a rollout covers: the role's VMs in the environment, or the chosen ones among them.
    private func targetVMs(application: UpgradeApplication, environmentID: UUID, vmIDs: [UUID]?) async throws -> [VM] {
        let all = try await VM.query(on: database).filter(\.$environment.$id == environmentID)
            .filter(\.$role.$id == application.roleID).sort(\.$hostName).all()
        guard let vmIDs else {
            guard !all.isEmpty else { throw FlotillaError.validation("the environment has no VM of the application's role") }
            return all
        }
        let wanted = Set(vmIDs)
        let chosen = all.filter { $0.id.map(wanted.contains) ?? false }
        guard !wanted.isEmpty, chosen.count == wanted.count else {
            throw FlotillaError.validation("every chosen VM must be in the environment and have the application's role")
        }
        return chosen
    }

    static func flotillaError(_ error: RepositoryError) -> FlotillaError {
        switch error {
        case .invalidRevision, .invalidURL, .unknownRevision, .unsafeArchive: .validation(error.description)
        case .commandFailed, .clientMissing, .timedOut: FlotillaError(.unavailable, error.description)
        }
    }
}

extension String {
    fileprivate var nilIfEmptyRevision: String? { isEmpty ? nil : self }
}

extension Application {
    /// Rollouts started outside a request (repository hooks).
    var upgradeRollouts: UpgradeRollouts {
        UpgradeRollouts(
            database: db, secrets: flotilla.secrets, jobs: flotilla.jobs, dataDirectory: flotilla.config.dataDirectory, logger: logger)
    }
}

extension Request {
    var upgradeRollouts: UpgradeRollouts {
        UpgradeRollouts(
            database: db, secrets: application.flotilla.secrets, jobs: application.flotilla.jobs,
            dataDirectory: application.flotilla.config.dataDirectory, logger: logger)
    }
}
