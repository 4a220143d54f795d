import Fluent
import Vapor

/// The upgrade page (issue 12 §5, UPG-1) and the role's application form (§1).
enum UpgradesController {
    struct Option: Encodable {
        var value: String
        var label: String
        var selected: Bool
    }

    struct RolloutRow: Encodable {
        var title: String
        var state: String
        var reason: String?
        var trigger: String
        var jobURL: String?
        var time: String
    }

    struct UpgradesPage: Encodable {
        var chrome: PageChrome
        var rows: [UpgradeFleet.Row]
        var pagination: PaginationView
        var environments: [Option]
        var roles: [Option]
        var applications: [Option]
        var driftOnly: Bool
        var search: String
        var rollouts: [RolloutRow]
        var canUpgrade: Bool
        var canConfigure: Bool
        var applicationLinks: [Option]
    }

    struct ApplicationPage: Encodable {
        var chrome: PageChrome
        var roleName: String
        var action: String
        var application: UpgradeApplications.Summary?
        var error: String?
    }

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.upgrades.pathComponents, use: page).requires(.viewUpgrades)
        routes.post(SiteURL.upgradesStart.pathComponents, use: start).requires(.upgradeVM)
        routes.post(SiteURL.upgradesRollback.pathComponents, use: rollback).requires(.upgradeVM)
        routes.get(SiteURL.roleApplication(id: nil).pathComponents, use: applicationForm).requires(.viewSettings)
        routes.post(SiteURL.roleApplication(id: nil).pathComponents, use: saveApplication).requires(.changeSettings)
    }

    @Sendable static func page(request: Request) async throws -> View {
        let pageRequest = try PageRequest(page: request.query["page"], per: request.query["per"])
        let filter = try UpgradesAPI.filter(request)
        let fleet = UpgradeFleet(database: request.db)
        let page = try await fleet.page(filter, page: pageRequest)
        let environments = try await Environment.query(on: request.db).sort(\.$name).all()
        let roles = try await Role.query(on: request.db).sort(\.$name).all()
        let applications = try await request.upgradeApplications.all()
        var query: [(String, String)] = []
        if let id = filter.environmentID { query.append(("environment", id.uuidString)) }
        if let role = filter.role, !role.isEmpty { query.append(("role", role)) }
        if let search = filter.search, !search.isEmpty { query.append(("q", search)) }
        if filter.driftOnly { query.append(("drift", "1")) }
        let names = Dictionary(uniqueKeysWithValues: try environments.map { (try $0.requireID(), $0.name) })
        let appNames = Dictionary(uniqueKeysWithValues: applications.map { ($0.id, $0.roleName) })
        let displayTime = DisplayTime(timeZone: request.application.flotilla.config.displayTimeZone)
        let rollouts = try await UpgradeRollout.query(on: request.db).sort(\.$createdAt, .descending).limit(10).all().map { rollout in
            RolloutRow(
                title:
                    "\(appNames[rollout.applicationID] ?? "?") in \(names[rollout.environmentID] ?? "?") to \(rollout.requestedRevision)",
                state: rollout.state.rawValue, reason: rollout.reason, trigger: rollout.trigger,
                jobURL: rollout.jobID.map { SiteURL.job(id: $0).relative },
                time: rollout.createdAt.map(displayTime.string) ?? "")
        }
        let role = request.auth.get(User.self)?.role
        return try await request.view.render(
            "upgrades",
            UpgradesPage(
                chrome: PageChrome(request, title: "Upgrades"), rows: page.items,
                pagination: PaginationView(page, path: SiteURL.upgrades.relative, query: query),
                environments: try environments.map {
                    Option(value: try $0.requireID().uuidString, label: $0.name, selected: $0.id == filter.environmentID)
                },
                roles: roles.map { Option(value: $0.name, label: $0.name, selected: $0.name == filter.role) },
                applications: applications.map {
                    Option(value: $0.id.uuidString, label: "\($0.roleName) (\($0.repositoryKind))", selected: false)
                },
                driftOnly: filter.driftOnly, search: filter.search ?? "", rollouts: rollouts,
                canUpgrade: Action.upgradeVM.isAllowed(for: role), canConfigure: Action.changeSettings.isAllowed(for: role),
                applicationLinks: try roles.map {
                    let id = try $0.requireID()
                    let has = applications.contains { $0.roleID == id }
                    return Option(value: SiteURL.roleApplication(id: id).relative, label: $0.name, selected: has)
                }))
    }

    /// "Upgrade": the selected VMs, or (none selected) the whole environment chosen in the form;
    /// a row's button: that VM alone, with its role's application.
    @Sendable static func start(request: Request) async throws -> Response {
        let form = QueryParameters(request.body.string)
        do {
            let row = try await rowVM(form, on: request.db)
            var applicationID = form.first("application").flatMap(UUID.init(uuidString:))
            if let row { applicationID = try await request.upgradeApplications.application(ofRole: row.$role.id)?.requireID() }
            guard let applicationID else { throw FlotillaError.validation("choose an application") }
            let selected = try row.map { [try $0.requireID()] } ?? form.all("vm").compactMap(UUID.init(uuidString:))
            let environmentID: UUID
            if let row {
                environmentID = row.$environment.id
            } else if let chosen = form.first("environment").flatMap(UUID.init(uuidString:)) {
                environmentID = chosen
            } else if let first = selected.first, let vm = try await VM.find(first, on: request.db) {
                environmentID = vm.$environment.id
            } else {
                throw FlotillaError.validation("choose an environment or select VMs")
            }
            var plan = RolloutPlan.standard
            if let canary = form.first("canary"), !canary.isEmpty { plan.canary = canary }
            if let size = form.first("batchSize"), !size.isEmpty { plan.batchSize = size }
            if let pause = form.first("pauseSeconds"), !pause.isEmpty {
                guard let seconds = Int(pause) else { throw FlotillaError.validation("the pause is a number of seconds") }
                plan.pauseSeconds = seconds
            }
            let started = try await request.upgradeRollouts.start(
                RolloutRequest(
                    applicationID: applicationID, environmentID: environmentID, revision: form.first("revision") ?? "",
                    trigger: .user(request.auditActor), vmIDs: selected.isEmpty ? nil : selected, plan: plan,
                    allowBadRevision: form.first("allowBad") == "1"))
            return request.redirect(to: SiteURL.job(id: started.jobID).relative)
        } catch let error as FlotillaError {
            request.notice(error.message)
            return request.redirect(to: SiteURL.upgrades.relative)
        }
    }

    /// "Roll back": the selected VMs (or the environment chosen) to their previous or a kept
    /// release; a row's button: that VM alone, with its role's application.
    @Sendable static func rollback(request: Request) async throws -> Response {
        let form = QueryParameters(request.body.string)
        do {
            let row = try await rowVM(form, on: request.db)
            let selected = try row.map { [try $0.requireID()] } ?? form.all("vm").compactMap(UUID.init(uuidString:))
            let environmentID = row == nil ? form.first("environment").flatMap(UUID.init(uuidString:)) : nil
            var applicationID = row == nil ? form.first("application").flatMap(UUID.init(uuidString:)) : nil
            if applicationID == nil, let first = selected.first, let vm = try await VM.find(first, on: request.db) {
                applicationID = try await request.upgradeApplications.application(ofRole: vm.$role.id)?.requireID()
            }
            guard let applicationID else { throw FlotillaError.validation("choose an application") }
            let vmIDs = try await UpgradesAPI.rollbackVMs(
                applicationID: applicationID, vmIDs: selected, environmentID: environmentID, on: request.db)
            let revision = form.first("revision").flatMap { $0.isEmpty ? nil : $0 }
            let jobID = try await request.upgradeRollouts.rollback(
                applicationID: applicationID, vmIDs: vmIDs, revision: revision, by: request.auditActor)
            return request.redirect(to: SiteURL.job(id: jobID).relative)
        } catch let error as FlotillaError {
            request.notice(error.message)
            return request.redirect(to: SiteURL.upgrades.relative)
        }
    }

    /// The VM whose row's button was pressed: the action is for it alone, whatever else is selected.
    private static func rowVM(_ form: QueryParameters, on database: any Database) async throws -> VM? {
        guard let text = form.first("row") else { return nil }
        guard let id = UUID(uuidString: text), let vm = try await VM.find(id, on: database) else {
            throw FlotillaError.validation("no such VM")
        }
        return vm
    }

    @Sendable static func applicationForm(request: Request) async throws -> View {
        try await renderApplication(request, error: nil)
    }

    @Sendable static func saveApplication(request: Request) async throws -> Response {
        let roleID = try request.uuidParameter("role")
        let form = QueryParameters(request.body.string)
        func text(_ name: String) -> String? { form.first(name) }
        let input = UpgradeApplications.Input(
            repositoryKind: text("repositoryKind") ?? "", repositoryURL: text("repositoryURL") ?? "", branch: text("branch"),
            username: (text("username") ?? "").isEmpty && text("removeCredentials") != "1" ? nil : (text("username") ?? ""),
            password: text("password"), deployDirectory: text("deployDirectory") ?? "", buildCommand: text("buildCommand"),
            restartCommand: text("restartCommand") ?? "", healthKind: text("healthKind") ?? "", healthTarget: text("healthTarget"),
            healthTimeoutSeconds: text("healthTimeoutSeconds").flatMap(Int.init), releasesKept: text("releasesKept").flatMap(Int.init))
        do {
            _ = try await request.upgradeApplications.save(input, roleID: roleID)
            request.notice("Application saved.")
            return request.redirect(to: SiteURL.roleApplication(id: roleID).relative)
        } catch let error as FlotillaError where error.kind == .validation {
            let response = try await renderApplication(request, error: error.message).encodeResponse(for: request)
            response.status = .badRequest
            return response
        }
    }

    private static func renderApplication(_ request: Request, error: String?) async throws -> View {
        let roleID = try request.uuidParameter("role")
        guard let role = try await Role.find(roleID, on: request.db) else { throw FlotillaError.notFound("no such role") }
        let applications = request.upgradeApplications
        let summary = try await applications.application(ofRole: roleID).map { try applications.summary($0, roleName: role.name) }
        return try await request.view.render(
            "application",
            ApplicationPage(
                chrome: PageChrome(request, title: "Application of \(role.name)"), roleName: role.name,
                action: SiteURL.roleApplication(id: roleID).relative, application: summary, error: error))
    }
}
