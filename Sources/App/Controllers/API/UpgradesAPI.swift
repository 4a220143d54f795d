import Fluent
import Vapor

/// `/api/v1/applications` and `/api/v1/upgrades` (issue 12 §1, §4, §5).
enum UpgradesAPI {
    static func register(_ api: any RoutesBuilder) {
        api.get("applications", use: applications).requires(.viewUpgrades)
        api.put("roles", ":id", "application", use: saveApplication).requires(.changeSettings)
        api.delete("roles", ":id", "application", use: deleteApplication).requires(.changeSettings)
        api.get("upgrades", "vms", use: fleet).requires(.viewUpgrades)
        api.post("upgrades", use: start).requires(.upgradeVM)
        api.post("upgrades", "rollback", use: rollback).requires(.upgradeVM)
    }

    struct StartInput: Content {
        var applicationID: UUID
        var environmentID: UUID
        var revision: String
        /// Absent: every VM of the application's role in the environment.
        var vmIDs: [UUID]?
        var canary: String?
        var batchSize: String?
        var pauseSeconds: Int?
        /// Roll out a revision marked bad on purpose (clears the mark).
        var allowBadRevision: Bool?
    }

    struct RollbackInput: Content {
        var applicationID: UUID
        /// The VMs; absent with `environmentID`: every VM of the role in that environment.
        var vmIDs: [UUID]?
        var environmentID: UUID?
        /// Absent: each VM's previous release; else the newest kept release of this revision.
        var revision: String?
    }

    @Sendable static func applications(request: Request) async throws -> [UpgradeApplications.Summary] {
        try await request.upgradeApplications.all()
    }

    @Sendable static func saveApplication(request: Request) async throws -> UpgradeApplications.Summary {
        let roleID = try request.uuidParameter("role")
        let applications = request.upgradeApplications
        let saved = try await applications.save(try request.content.decode(UpgradeApplications.Input.self), roleID: roleID)
        return try applications.summary(saved, roleName: try await Role.find(roleID, on: request.db)?.name ?? "?")
    }

    @Sendable static func deleteApplication(request: Request) async throws -> HTTPStatus {
        try await request.upgradeApplications.delete(roleID: try request.uuidParameter("role"))
        return .noContent
    }

    @Sendable static func fleet(request: Request) async throws -> ListResponse<UpgradeFleet.Row> {
        let page = try PageRequest(page: request.query["page"], per: request.query["per"])
        let filter = try UpgradesAPI.filter(request)
        return ListResponse(try await UpgradeFleet(database: request.db).page(filter, page: page))
    }

    @Sendable static func start(request: Request) async throws -> Response {
        let input = try request.content.decode(StartInput.self)
        var plan = RolloutPlan.standard
        if let canary = input.canary { plan.canary = canary }
        if let batchSize = input.batchSize { plan.batchSize = batchSize }
        if let pause = input.pauseSeconds { plan.pauseSeconds = pause }
        let started = try await request.upgradeRollouts.start(
            RolloutRequest(
                applicationID: input.applicationID, environmentID: input.environmentID, revision: input.revision,
                trigger: .user(request.auditActor), vmIDs: input.vmIDs, plan: plan, allowBadRevision: input.allowBadRevision ?? false))
        return try await started.encodeResponse(status: .accepted, for: request)
    }

    @Sendable static func rollback(request: Request) async throws -> Response {
        let input = try request.content.decode(RollbackInput.self)
        let vmIDs = try await rollbackVMs(
            applicationID: input.applicationID, vmIDs: input.vmIDs, environmentID: input.environmentID, on: request.db)
        let jobID = try await request.upgradeRollouts.rollback(
            applicationID: input.applicationID, vmIDs: vmIDs, revision: input.revision, by: request.auditActor)
        return try await API.JobReference.accepted(jobID, for: request)
    }

    /// The chosen VMs, or every VM of the application's role in an environment.
    static func rollbackVMs(applicationID: UUID, vmIDs: [UUID]?, environmentID: UUID?, on database: any Database) async throws -> [UUID] {
        if let vmIDs, !vmIDs.isEmpty { return vmIDs }
        guard let environmentID else { throw FlotillaError.validation("choose VMs or an environment") }
        guard let application = try await UpgradeApplication.find(applicationID, on: database) else {
            throw FlotillaError.notFound("no such application")
        }
        return try await VM.query(on: database).filter(\.$environment.$id == environmentID).filter(\.$role.$id == application.roleID)
            .all().map { try $0.requireID() }
    }

    /// The upgrade list's filters from the query string (shared with the page).
    static func filter(_ request: Request) throws -> UpgradeFleet.Filter {
        var filter = UpgradeFleet.Filter()
        if let environment: String = request.query["environment"], !environment.isEmpty {
            guard let id = UUID(uuidString: environment) else { throw FlotillaError.validation("environment must be an environment ID") }
            filter.environmentID = id
        }
        filter.role = request.query["role"]
        filter.search = request.query["q"]
        let drift: String? = request.query["drift"]
        filter.driftOnly = drift == "1" || drift == "true"
        return filter
    }
}
