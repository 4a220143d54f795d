import Fluent
import Foundation
import Vapor

/// The service configuration wizard (SPEC CFG-1..3) as steps any client can take: choose the
/// profile and environment and one VM per dependency role (a run), check, choose target VMs,
/// preview, configure. Configure starts a job: every VM's files staged and validated first
/// (`config.stage`), then replaced, restarted and health-gated (`config.apply`).
struct ConfigurationWizard {
    let database: any Database
    let operations: VMOperations
    let jobs: JobEngine
    let actor: AuditLog.Actor
    let logger: Logger

    /// A check older than this must be run again before Configure.
    static let checkValidity: TimeInterval = 15 * 60

    struct VMChoice: Content, Equatable {
        var id: UUID
        var hostName: String
        var ip: String
        var role: String
    }

    struct DependencyOption: Content {
        var role: String
        /// What will be checked on the chosen VM, e.g. "mysql on port 3306".
        var checks: [String]
        var vms: [VMChoice]
    }

    struct TargetOption: Content {
        var role: String
        var files: [String]
        var restart: [String]
        var vms: [VMChoice]
    }

    /// What the wizard offers for a profile in an environment.
    struct Options: Content {
        var profileID: UUID
        var profile: String
        var version: Int
        var environmentID: UUID
        var environment: String
        var dependencies: [DependencyOption]
        var targets: [TargetOption]
    }

    struct RunBody: Content {
        var id: UUID
        var profileID: UUID
        var profile: String
        var version: Int
        var environmentID: UUID
        var environment: String
        var dependencies: [String: VMChoice]
        var checkPassed: Bool?
        var checkedAt: Date?
        var lastJobID: UUID?
    }

    struct FilePreview: Content {
        var path: String
        var changed: Bool
        /// Unified diff against the guest's file now, secrets masked; empty when unchanged.
        var diff: String
    }

    struct VMPreview: Content {
        var vm: VMChoice
        var files: [FilePreview]
        var restart: [String]
        /// Why the guest's files could not be read (the diff is then against nothing).
        var problem: String?
    }

    private var profiles: ServiceProfiles {
        ServiceProfiles(database: database, secrets: operations.secrets, actor: actor, logger: logger)
    }

    func options(profileID: UUID, environmentID: UUID) async throws -> Options {
        let record = try await profiles.find(profileID)
        let profile = try await profiles.profile(record, version: record.currentVersion)
        let environment = try await findEnvironment(environmentID)
        let vms = try await VM.query(on: database).filter(\.$environment.$id == environmentID).with(\.$role).sort(\.$hostName).all()
        func choices(_ role: String) throws -> [VMChoice] { try vms.filter { $0.role.name == role }.map(Self.choice) }
        return Options(
            profileID: profileID, profile: record.name, version: record.currentVersion, environmentID: environmentID,
            environment: environment.name,
            dependencies: try profile.dependencies.keys.sorted().map { role in
                DependencyOption(
                    role: role,
                    checks: profile.dependencies[role]?.checks.map { "\($0.kind.rawValue) on port \($0.effectivePort ?? 0)" } ?? [],
                    vms: try choices(role))
            },
            targets: try profile.targets.keys.sorted().map { role in
                let target = profile.targets[role]
                return TargetOption(
                    role: role, files: target?.files.map(\.path) ?? [], restart: target?.restart ?? [], vms: try choices(role))
            })
    }

    /// Starts a run: exactly one VM of each dependency role, from the environment.
    func begin(profileID: UUID, environmentID: UUID, dependencies: [String: UUID]) async throws -> ConfigurationRun {
        let record = try await profiles.find(profileID)
        let profile = try await profiles.profile(record, version: record.currentVersion)
        _ = try await findEnvironment(environmentID)
        if let extra = Set(dependencies.keys).subtracting(profile.dependencies.keys).sorted().first {
            throw FlotillaError.validation("dependencies: profile \(profile.name) has no dependency role '\(extra.prefix(64))'")
        }
        let run = ConfigurationRun()
        run.profileID = profileID
        run.version = record.currentVersion
        run.environmentID = environmentID
        run.dependenciesJSON = String(decoding: try JSONEncoder().encode(dependencies), as: UTF8.self)
        run.createdBy = actor.name ?? "system"
        _ = try await ConfigurationPlan.dependencyAddresses(run: run, profile: profile, database: database)
        try await run.create(on: database)
        return run
    }

    func find(_ runID: UUID) async throws -> ConfigurationRun {
        guard let run = try await ConfigurationRun.find(runID, on: database) else {
            throw FlotillaError.notFound("no such configuration run")
        }
        return run
    }

    func body(_ run: ConfigurationRun) async throws -> RunBody {
        let record = try await profiles.find(run.profileID)
        let environment = try await findEnvironment(run.environmentID)
        var chosen: [String: VMChoice] = [:]
        for (role, vmID) in run.dependencies {
            if let vm = try await VM.query(on: database).filter(\.$id == vmID).with(\.$role).first() { chosen[role] = try Self.choice(vm) }
        }
        return RunBody(
            id: try run.requireID(), profileID: run.profileID, profile: record.name, version: run.version,
            environmentID: run.environmentID, environment: environment.name, dependencies: chosen, checkPassed: run.checkPassed,
            checkedAt: run.checkedAt, lastJobID: run.lastJobID)
    }

    /// Runs the profile's dependency checks from the platform and from each chosen target VM
    /// (SPEC CFG-2), keeps the verdict on the run (Configure needs it) and audits it.
    func check(_ run: ConfigurationRun, targets: [UUID], checks: DependencyChecks) async throws -> DependencyCheckReport {
        let record = try await profiles.find(run.profileID)
        let profile = try await profiles.profile(record, version: run.version)
        let environment = try await findEnvironment(run.environmentID)
        var dependencies: [String: VM] = [:]
        for (role, vmID) in run.dependencies {
            if let vm = try await VM.query(on: database).filter(\.$id == vmID).with(\.$role).first() { dependencies[role] = vm }
        }
        let targetVMs = try await plans(run, targets: targets, allowNone: true).map(\.vm)
        let report = try await checks.run(
            profile: profile, dependencies: dependencies, targets: targetVMs, secrets: try profiles.open(record))
        run.checkPassed = report.passed
        run.checkReport = String(decoding: try JSONEncoder().encode(report), as: UTF8.self)
        run.checkedAt = Date()
        try await run.save(on: database)
        let chosen = dependencies.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.hostName) \($0.value.ip)" }
        var details =
            "profile \(profile.name) v\(run.version) on \(environment.name): \(report.passed ? "every check passed" : "checks failed")"
        details += "; dependencies: \(chosen.joined(separator: ", ")); from: platform"
        details += targetVMs.map { ", \($0.hostName)" }.joined()
        if !report.failures.isEmpty { details += "\n" + report.failures.joined(separator: "\n") }
        await AuditLog.record(
            report.passed ? .operation : .error, action: "config.check", result: report.passed ? .success : .failure,
            details: String(details.prefix(16000)), by: actor, on: database, logger: logger)
        return report
    }

    /// The target VMs the run's last check ran from.
    func checkedOrigins(_ run: ConfigurationRun) -> Set<UUID> {
        guard let text = run.checkReport, let report = try? JSONDecoder().decode(DependencyCheckReport.self, from: Data(text.utf8)) else {
            return []
        }
        return Set(report.results.compactMap(\.originVMID))
    }

    /// Per target VM, per file: the diff against the guest's file now, secrets masked.
    func preview(_ run: ConfigurationRun, targets: [UUID]) async throws -> [VMPreview] {
        let plans = try await self.plans(run, targets: targets)
        return await withTaskGroup(of: (Int, VMPreview).self) { group in
            for (index, plan) in plans.enumerated() {
                group.addTask { (index, await preview(plan)) }
            }
            var previews: [(Int, VMPreview)] = []
            for await preview in group { previews.append(preview) }
            return previews.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    private func preview(_ plan: ConfigurationPlan) async -> VMPreview {
        let choice = (try? Self.choice(plan.vm)) ?? VMChoice(id: UUID(), hostName: plan.vm.hostName, ip: plan.vm.ip, role: plan.role)
        do {
            let guest = try await plan.guestFiles(shell: operations.shell, login: operations.login)
            var files: [FilePreview] = []
            for planned in plan.files {
                let current = try await guest.read(planned.file.path)
                let changed = current != planned.guestText
                let diff = changed ? UnifiedDiff.make(old: current.map(plan.masked), new: planned.previewText, path: planned.file.path) : ""
                files.append(FilePreview(path: planned.file.path, changed: changed, diff: diff))
            }
            return VMPreview(vm: choice, files: files, restart: files.contains(where: \.changed) ? plan.restart : [], problem: nil)
        } catch {
            let files = plan.files.map {
                FilePreview(path: $0.file.path, changed: true, diff: UnifiedDiff.make(old: nil, new: $0.previewText, path: $0.file.path))
            }
            return VMPreview(vm: choice, files: files, restart: plan.restart, problem: FlotillaError.describe(error))
        }
    }

    /// Starts the job for `targets` (all of the run's chosen VMs, or one failed VM again). Refused
    /// unless the last check passed, covered these VMs and is recent.
    func configure(_ run: ConfigurationRun, targets: [UUID]) async throws -> UUID {
        guard run.checkPassed == true, let checkedAt = run.checkedAt else {
            throw FlotillaError.conflict("Configure is possible only when every dependency check passed: run the check first")
        }
        guard Date().timeIntervalSince(checkedAt) < Self.checkValidity else {
            throw FlotillaError.conflict("the last check is more than 15 minutes old: check again before configuring")
        }
        let plans = try await self.plans(run, targets: targets)
        let checked = checkedOrigins(run)
        if let unchecked = plans.first(where: { !checked.contains($0.vm.id ?? UUID()) }) {
            throw FlotillaError.conflict("\(unchecked.vm.hostName) was not among the VMs the check ran from: check again with it chosen")
        }
        let previews = try await preview(run, targets: targets)
        let runID = try run.requireID()
        var steps: [StepPlan] = []
        for plan in plans {
            let vmID = try plan.vm.requireID()
            steps.append(
                try StepPlan(
                    ConfigStageStep.self, .init(runID: runID, vmID: vmID),
                    title: "write and validate \(plan.role) files on \(plan.vm.hostName)",
                    vmName: plan.vm.hostName, vmRole: plan.role, phase: 0))
        }
        for plan in plans {
            let vmID = try plan.vm.requireID()
            steps.append(
                try StepPlan(
                    ConfigApplyStep.self, .init(runID: runID, vmID: vmID),
                    title: "replace, restart and check \(plan.role) services on \(plan.vm.hostName)", vmName: plan.vm.hostName,
                    vmRole: plan.role, phase: 1))
        }
        let profile = plans.first?.profile.name ?? "?"
        let environment = plans.first?.environment.name ?? "?"
        let jobID = try await jobs.submit(
            kind: ConfigApplyStep.name, title: "Configure \(profile) on \(plans.count) VM\(plans.count == 1 ? "" : "s") of \(environment)",
            by: actor, steps: steps)
        run.lastJobID = jobID
        try await run.save(on: database)
        let diffs: [String] = previews.flatMap { preview in preview.files.filter(\.changed).map { "\(preview.vm.hostName) \($0.diff)" } }
        let chosen: [String] = try await body(run).dependencies.sorted { $0.key < $1.key }.map {
            "\($0.key)=\($0.value.hostName) \($0.value.ip)"
        }
        var details = "profile \(profile) v\(run.version) on \(environment) (job \(jobID)); dependencies: "
        details += chosen.joined(separator: ", ") + "; targets: " + plans.map(\.vm.hostName).joined(separator: ", ")
        details += diffs.isEmpty ? "; no file changes" : "\n" + diffs.joined(separator: "\n")
        await AuditLog.record(
            .operation, action: "config.configure", result: .success, details: String(details.prefix(16000)), by: actor, on: database,
            logger: logger)
        return jobID
    }

    /// One plan per chosen target VM (at least one, no duplicates).
    func plans(_ run: ConfigurationRun, targets: [UUID], allowNone: Bool = false) async throws -> [ConfigurationPlan] {
        guard allowNone || !targets.isEmpty else { throw FlotillaError.validation("targets: choose at least one target VM") }
        guard Set(targets).count == targets.count else { throw FlotillaError.validation("targets: a VM is chosen twice") }
        var plans: [ConfigurationPlan] = []
        for vmID in targets {
            guard let vm = try await VM.query(on: database).filter(\.$id == vmID).with(\.$role).first() else {
                throw FlotillaError.validation("targets: no VM \(vmID)")
            }
            plans.append(try await ConfigurationPlan.load(run: run, vm: vm, database: database, secrets: operations.secrets))
        }
        return plans
    }

    private func findEnvironment(_ id: UUID) async throws -> Environment {
        guard let environment = try await Environment.find(id, on: database) else { throw FlotillaError.notFound("no such environment") }
        return environment
    }

    static func choice(_ vm: VM) throws -> VMChoice {
        VMChoice(id: try vm.requireID(), hostName: vm.hostName, ip: vm.ip, role: vm.role.name)
    }
}

extension Request {
    var configurationWizard: ConfigurationWizard {
        ConfigurationWizard(
            database: db, operations: application.flotilla.vmOperations, jobs: application.flotilla.jobs, actor: auditActor, logger: logger)
    }
}
