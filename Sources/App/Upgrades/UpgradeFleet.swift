import Fluent
import Vapor

/// The upgrade page's rows (issue 12 §5, UPG-1): every VM whose role has an application, with
/// its current and previous revision, its environment's target revision and whether it drifts
/// from it.
struct UpgradeFleet {
    let database: any Database

    struct Row: Content, Equatable {
        var vmID: UUID
        var name: String
        var ip: String
        var role: String
        var environmentID: UUID
        var environment: String
        var applicationID: UUID
        var currentRevision: String?
        var previousRevision: String?
        var currentRelease: String?
        var targetRevision: String?
        /// On a revision other than the environment's target (or on none while there is one).
        var drift: Bool
    }

    struct Filter: Sendable, Equatable {
        var environmentID: UUID?
        var role: String?
        var driftOnly = false
        var search: String?
    }

    func page(_ filter: Filter, page: PageRequest) async throws -> Page<Row> {
        let rows = try await rows(filter)
        let items = Array(rows.dropFirst(page.offset).prefix(page.per))
        return Page(items: items, total: rows.count, request: page)
    }

    func rows(_ filter: Filter) async throws -> [Row] {
        let applications = try await UpgradeApplication.query(on: database).all()
        guard !applications.isEmpty else { return [] }
        let byRole = Dictionary(applications.map { ($0.roleID, $0) }, uniquingKeysWith: { first, _ in first })
        var query = VM.query(on: database).with(\.$role).with(\.$environment).filter(\.$role.$id ~~ Array(byRole.keys))
        if let environmentID = filter.environmentID { query = query.filter(\.$environment.$id == environmentID) }
        let vms = try await query.sort(\.$hostName).all()
        let releases = try await UpgradeVMRelease.query(on: database).all()
        let releaseOf = Dictionary(releases.map { ("\($0.vmID)/\($0.applicationID)", $0) }, uniquingKeysWith: { first, _ in first })
        let targets = try await targetRevisions()
        let search = filter.search?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        return try vms.compactMap { vm -> Row? in
            guard let application = byRole[vm.$role.id] else { return nil }
            if let role = filter.role, !role.isEmpty, vm.role.name != role { return nil }
            if !search.isEmpty, !vm.hostName.lowercased().contains(search), !vm.ip.contains(search) { return nil }
            let applicationID = try application.requireID()
            let vmID = try vm.requireID()
            let release = releaseOf["\(vmID)/\(applicationID)"]
            let current = release?.currentRelease.map(GuestReleases.revision(ofRelease:))
            let target = targets["\(applicationID)/\(vm.$environment.id)"]
            let drift = target.map { target in current.map { !target.hasPrefix($0) } ?? true } ?? false
            if filter.driftOnly, !drift { return nil }
            return Row(
                vmID: vmID, name: vm.hostName, ip: vm.ip, role: vm.role.name, environmentID: vm.$environment.id,
                environment: vm.environment.name, applicationID: applicationID, currentRevision: current,
                previousRevision: release?.previousRelease.map(GuestReleases.revision(ofRelease:)), currentRelease: release?.currentRelease,
                targetRevision: target, drift: drift)
        }
    }

    /// Per "application/environment": the revision of the newest running or succeeded rollout
    /// that is not marked bad.
    func targetRevisions() async throws -> [String: String] {
        let bad = Set(try await UpgradeBadRevision.query(on: database).all().map { "\($0.applicationID)/\($0.revision)" })
        var targets: [String: String] = [:]
        let rollouts = try await UpgradeRollout.query(on: database).filter(\.$state ~~ [.running, .succeeded])
            .sort(\.$createdAt, .descending).all()
        for rollout in rollouts where !bad.contains("\(rollout.applicationID)/\(rollout.revision)") {
            let key = "\(rollout.applicationID)/\(rollout.environmentID)"
            if targets[key] == nil { targets[key] = rollout.revision }
        }
        return targets
    }
}
