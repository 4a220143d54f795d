import Fluent
import Vapor

/// Service configuration (SPEC CFG-1..5): the profiles (add, edit with versions, secrets set but
/// never shown), the wizard (dependency VMs → Check → target VMs → Preview → Configure) and the
/// drift check. Every form works without JavaScript; each step is also in the API.
enum ServiceConfigurationController {
    struct Option: Encodable {
        var value: String
        var label: String
        var selected: Bool
    }

    struct Page: Encodable {
        var chrome: PageChrome
        var profiles: [ServiceProfiles.Summary]
        var environments: [Option]
        var drift: [ConfigurationDrift.FileState]?
        var error: String?
        var mayConfigure: Bool
    }

    struct ProfilePage: Encodable {
        var chrome: PageChrome
        var profile: ServiceProfiles.Summary
        var versions: [ServiceProfiles.VersionSummary]
        var showingOldVersion: Bool
        var error: String?
        var mayConfigure: Bool
    }

    struct WizardPage: Encodable {
        var chrome: PageChrome
        var options: ConfigurationWizard.Options
        var error: String?
    }

    struct TargetVM: Encodable {
        var id: String
        var label: String
        var checked: Bool
    }

    struct TargetRole: Encodable {
        var role: String
        var files: [String]
        var restart: [String]
        var vms: [TargetVM]
    }

    struct RunPage: Encodable {
        var chrome: PageChrome
        var run: ConfigurationWizard.RunBody
        var dependencies: [String]
        var targets: [TargetRole]
        var check: DependencyCheckReport?
        var previews: [ConfigurationWizard.VMPreview]?
        var error: String?
        var actionURL: String
    }

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.serviceConfiguration.pathComponents, use: show).requires(.viewServiceConfiguration)
        routes.post(SiteURL.serviceProfiles.pathComponents, use: add).requires(.configureServices)
        routes.post(SiteURL.serviceProfileExamples.pathComponents, use: importExamples).requires(.configureServices)
        routes.get(SiteURL.serviceProfile(id: nil).pathComponents, use: showProfile).requires(.viewServiceConfiguration)
        routes.post(SiteURL.serviceProfile(id: nil).pathComponents, use: edit).requires(.configureServices)
        routes.get(SiteURL.configurationWizard.pathComponents, use: wizard).requires(.configureServices)
        routes.post(SiteURL.configurationRuns.pathComponents, use: begin).requires(.configureServices)
        routes.get(SiteURL.configurationRun(id: nil).pathComponents, use: showRun).requires(.configureServices)
        routes.post(SiteURL.configurationRun(id: nil).pathComponents, use: step).requires(.configureServices)
        routes.post(SiteURL.configurationDrift.pathComponents, use: drift).requires(.configureServices)
    }

    @Sendable static func show(request: Request) async throws -> Response {
        try await render(request)
    }

    private static func render(
        _ request: Request, drift: [ConfigurationDrift.FileState]? = nil, error: String? = nil, status: HTTPResponseStatus = .ok
    ) async throws -> Response {
        let environments = try await Environment.query(on: request.db).sort(\.$name).all().map {
            Option(value: try $0.requireID().uuidString, label: $0.name, selected: false)
        }
        let page = Page(
            chrome: PageChrome(request, title: "Service configuration"), profiles: try await request.serviceProfiles.list(),
            environments: environments, drift: drift, error: error,
            mayConfigure: Action.configureServices.isAllowed(for: try request.user.role))
        let response = try await request.view.render("service-configuration", page).encodeResponse(for: request)
        response.status = status
        return response
    }

    @Sendable static func add(request: Request) async throws -> Response {
        let form = QueryParameters(request.body.string)
        do {
            let record = try await request.serviceProfiles.add(document: form.first("document") ?? "")
            request.notice("Profile \(record.name) added.")
            return request.redirect(to: SiteURL.serviceProfile(id: try record.requireID()).relative)
        } catch let error as FlotillaError where error.kind == .validation || error.kind == .conflict {
            return try await render(request, error: error.message, status: .badRequest)
        }
    }

    @Sendable static func importExamples(request: Request) async throws -> Response {
        let root = URL(fileURLWithPath: request.application.directory.viewsDirectory).deletingLastPathComponent()
            .deletingLastPathComponent()
        let added = try await request.serviceProfiles.importExamples(
            from: ServiceProfile.examplesDirectory(in: ResourceDirectory(path: root.path)))
        request.notice(added.isEmpty ? "Every example profile is already there." : "Added: \(added.joined(separator: ", ")).")
        return request.redirect(to: SiteURL.serviceConfiguration.relative)
    }

    @Sendable static func showProfile(request: Request) async throws -> Response {
        let profiles = request.serviceProfiles
        let record = try await profiles.find(try request.uuidParameter("profile"))
        let version = try? request.query.get(Int.self, at: "version")
        return try await renderProfile(request, record: record, version: version)
    }

    private static func renderProfile(
        _ request: Request, record: ServiceProfileRecord, version: Int? = nil, document: String? = nil, error: String? = nil
    ) async throws -> Response {
        let profiles = request.serviceProfiles
        var summary = try await profiles.summary(record, version: version)
        if let document { summary.document = document }
        let page = ProfilePage(
            chrome: PageChrome(request, title: "Profile \(record.name)"), profile: summary,
            versions: try await profiles.versions(of: record),
            showingOldVersion: version.map { $0 != record.currentVersion } ?? false, error: error,
            mayConfigure: Action.configureServices.isAllowed(for: try request.user.role))
        let response = try await request.view.render("service-profile", page).encodeResponse(for: request)
        if error != nil { response.status = .badRequest }
        return response
    }

    @Sendable static func edit(request: Request) async throws -> Response {
        let form = QueryParameters(request.body.string)
        let profiles = request.serviceProfiles
        let record = try await profiles.find(try request.uuidParameter("profile"))
        if form.first("delete") != nil {
            try await profiles.delete(record)
            request.notice("Profile \(record.name) deleted.")
            return request.redirect(to: SiteURL.serviceConfiguration.relative)
        }
        var secrets: [String: String] = [:]
        for name in try await profiles.summary(record).secrets {
            if let value = form.first("secret-\(name)"), !value.isEmpty { secrets[name] = value }
        }
        do {
            let saved = try await profiles.edit(record, document: form.first("document"), secretValues: secrets)
            request.notice("Saved: version \(saved.currentVersion).")
            return request.redirect(to: SiteURL.serviceProfile(id: try saved.requireID()).relative)
        } catch let error as FlotillaError where error.kind == .validation {
            return try await renderProfile(request, record: record, document: form.first("document"), error: error.message)
        }
    }

    @Sendable static func wizard(request: Request) async throws -> View {
        let profile = try request.query.get(UUID.self, at: "profile")
        let environment = try request.query.get(UUID.self, at: "environment")
        let options = try await request.configurationWizard.options(profileID: profile, environmentID: environment)
        return try await request.view.render(
            "configuration-wizard", WizardPage(chrome: PageChrome(request, title: "Configure services"), options: options))
    }

    @Sendable static func begin(request: Request) async throws -> Response {
        let form = QueryParameters(request.body.string)
        guard let profile = form.first("profile").flatMap(UUID.init(uuidString:)),
            let environment = form.first("environment").flatMap(UUID.init(uuidString:))
        else { throw FlotillaError.validation("choose a profile and an environment") }
        let wizard = request.configurationWizard
        let options = try await wizard.options(profileID: profile, environmentID: environment)
        var chosen: [String: UUID] = [:]
        for dependency in options.dependencies {
            if let vm = form.first("dependency-\(dependency.role)").flatMap(UUID.init(uuidString:)) { chosen[dependency.role] = vm }
        }
        do {
            let run = try await wizard.begin(profileID: profile, environmentID: environment, dependencies: chosen)
            return request.redirect(to: SiteURL.configurationRun(id: try run.requireID()).relative)
        } catch let error as FlotillaError where error.kind == .validation {
            let page = WizardPage(chrome: PageChrome(request, title: "Configure services"), options: options, error: error.message)
            let response = try await request.view.render("configuration-wizard", page).encodeResponse(for: request)
            response.status = .badRequest
            return response
        }
    }

    @Sendable static func showRun(request: Request) async throws -> Response {
        let wizard = request.configurationWizard
        let run = try await wizard.find(try request.uuidParameter("configuration run"))
        let check = run.checkReport.flatMap { try? JSONDecoder().decode(DependencyCheckReport.self, from: Data($0.utf8)) }
        return try await renderRun(request, run: run, chosen: Set(check?.results.compactMap(\.originVMID) ?? []), check: check)
    }

    private static func renderRun(
        _ request: Request, run: ConfigurationRun, chosen: Set<UUID>, check: DependencyCheckReport? = nil,
        previews: [ConfigurationWizard.VMPreview]? = nil, error: String? = nil
    ) async throws -> Response {
        let wizard = request.configurationWizard
        let body = try await wizard.body(run)
        let options = try await wizard.options(profileID: run.profileID, environmentID: run.environmentID)
        let page = RunPage(
            chrome: PageChrome(request, title: "Configure \(body.profile) on \(body.environment)"), run: body,
            dependencies: body.dependencies.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.hostName) (\($0.value.ip))" },
            targets: options.targets.map { target in
                TargetRole(
                    role: target.role, files: target.files, restart: target.restart,
                    vms: target.vms.map {
                        TargetVM(id: $0.id.uuidString, label: "\($0.hostName) (\($0.ip))", checked: chosen.contains($0.id))
                    })
            }, check: check, previews: previews, error: error, actionURL: SiteURL.configurationRun(id: body.id).relative)
        let response = try await request.view.render("configuration-run", page).encodeResponse(for: request)
        if error != nil { response.status = .badRequest }
        return response
    }

    /// One of the run's buttons: check, preview or configure, for the ticked target VMs.
    @Sendable static func step(request: Request) async throws -> Response {
        let form = QueryParameters(request.body.string)
        let wizard = request.configurationWizard
        let run = try await wizard.find(try request.uuidParameter("configuration run"))
        let targets = form.all("target").compactMap(UUID.init(uuidString:))
        do {
            switch form.first("step") {
            case "check":
                let report = try await wizard.check(run, targets: targets, checks: request.dependencyChecks)
                return try await renderRun(request, run: run, chosen: Set(targets), check: report)
            case "preview":
                let previews = try await wizard.preview(run, targets: targets)
                return try await renderRun(request, run: run, chosen: Set(targets), previews: previews)
            case "configure":
                let jobID = try await wizard.configure(run, targets: targets)
                return request.redirect(to: SiteURL.job(id: jobID).relative)
            default:
                throw FlotillaError.validation("choose Check, Preview or Configure")
            }
        } catch let error as FlotillaError where error.kind == .validation || error.kind == .conflict {
            return try await renderRun(request, run: run, chosen: Set(targets), error: error.message)
        }
    }

    @Sendable static func drift(request: Request) async throws -> Response {
        let states = try await ConfigurationDrift(
            database: request.db, operations: request.application.flotilla.vmOperations, actor: request.auditActor, logger: request.logger
        ).check()
        return try await render(request, drift: states)
    }
}
