import Vapor

/// Upgrades → Hooks (issue 12 §6): the repositories' hooks with what to install where (a new
/// hook's token or secret shown once, on the page that follows its creation), and the
/// auto-upgrade switch with its branch filter per application and environment.
enum UpgradeHooksController {
    struct HookRow: Encodable {
        var format: String
        var repository: String
        var endpoint: String
        var postCommitLine: String?
        var created: String
        var lastDelivery: String?
        var lastResult: String?
        var deleteURL: String
    }

    struct NewHook: Encodable {
        var format: String
        var formatTitle: String
        var repository: String
        var endpoint: String
        var secret: String
        var postCommitLine: String?
    }

    struct TargetRow: Encodable {
        var applicationID: String
        var environmentID: String
        var role: String
        var environment: String
        var repository: String
        var isGit: Bool
        var enabled: Bool
        var branches: String
        var defaultBranch: String
    }

    struct Option: Encodable {
        var value: String
        var label: String
        var selected: Bool
    }

    struct Page: Encodable {
        var chrome: PageChrome
        var hooks: [HookRow]
        var newHook: NewHook?
        var targets: [TargetRow]
        var formats: [Option]
        var form: [String: String]
        var quietSeconds: Int
        var error: String?
        var addURL: String
        var autoURL: String
        var upgradesURL: String
    }

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.upgradeHooks.pathComponents, use: show).requires(.viewUpgrades)
        routes.post(SiteURL.upgradeHooks.pathComponents, use: add).requires(.manageUpgradeHooks)
        routes.post(SiteURL.upgradeHookDelete(id: nil).pathComponents, use: delete).requires(.manageUpgradeHooks)
        routes.post(SiteURL.upgradeAutoUpgrade.pathComponents, use: setAutoUpgrade).requires(.upgradeVM)
    }

    @Sendable static func show(request: Request) async throws -> Response {
        try await render(request)
    }

    private static func render(
        _ request: Request, newHook: (hook: UpgradeHook, secret: String)? = nil, error: String? = nil, form: [String: String] = [:],
        status: HTTPResponseStatus = .ok
    ) async throws -> Response {
        let hooks = request.upgradeHooks
        let display = DisplayTime(timeZone: request.application.flotilla.config.displayTimeZone)
        let base = request.hookBaseURL
        let rows = try await hooks.hooks().map { hook in
            let endpoint = try UpgradeHooks.endpoint(hook, base: base)
            return HookRow(
                format: UpgradeHookFormat(rawValue: hook.format)?.title ?? hook.format, repository: hook.repositoryURL, endpoint: endpoint,
                postCommitLine: hook.format == UpgradeHookFormat.svn.rawValue
                    ? UpgradeHooks.postCommitLine(endpoint: endpoint, token: nil) : nil,
                created: hook.createdAt.map(display.string) ?? "", lastDelivery: hook.lastDeliveryAt.map(display.string),
                lastResult: hook.lastResult, deleteURL: SiteURL.upgradeHookDelete(id: try hook.requireID()).relative)
        }
        let created = try newHook.map { hook, secret in
            let endpoint = try UpgradeHooks.endpoint(hook, base: base)
            let format = UpgradeHookFormat(rawValue: hook.format) ?? .generic
            return NewHook(
                format: format.rawValue, formatTitle: format.title, repository: hook.repositoryURL, endpoint: endpoint, secret: secret,
                postCommitLine: format == .svn ? UpgradeHooks.postCommitLine(endpoint: endpoint, token: secret) : nil)
        }
        let targets = try await hooks.targets().map { target in
            TargetRow(
                applicationID: try target.application.requireID().uuidString, environmentID: try target.environment.requireID().uuidString,
                role: target.roleName, environment: target.environment.name, repository: target.application.repositoryURL,
                isGit: target.application.repositoryKind == RepositoryLocation.Kind.git.rawValue,
                enabled: target.autoUpgrade?.enabled ?? false, branches: target.autoUpgrade?.branches ?? "",
                defaultBranch: target.application.branch ?? "main")
        }
        let chosen = form["format"] ?? UpgradeHookFormat.svn.rawValue
        let page = Page(
            chrome: PageChrome(request, title: "Upgrade hooks"), hooks: rows, newHook: created, targets: targets,
            formats: UpgradeHookFormat.allCases.map { Option(value: $0.rawValue, label: $0.title, selected: $0.rawValue == chosen) },
            form: form, quietSeconds: request.application.flotilla.config.upgradeQuietSeconds, error: error,
            addURL: SiteURL.upgradeHooks.relative, autoURL: SiteURL.upgradeAutoUpgrade.relative, upgradesURL: SiteURL.upgrades.relative)
        let response = try await request.view.render("upgrade-hooks", page).encodeResponse(for: request)
        response.status = status
        // The page with a new secret must not be kept by the browser or a proxy.
        if newHook != nil { response.headers.replaceOrAdd(name: .cacheControl, value: "no-store") }
        return response
    }

    @Sendable static func add(request: Request) async throws -> Response {
        let query = QueryParameters(request.body.string)
        let format = query.first("format") ?? ""
        let repository = query.first("repository") ?? ""
        do {
            let created = try await request.upgradeHooks.add(format: format, repositoryURL: repository)
            return try await render(request, newHook: created, status: .created)
        } catch let error as FlotillaError {
            return try await render(
                request, error: error.message, form: ["format": String(format.prefix(16)), "repository": String(repository.prefix(2048))],
                status: error.status)
        }
    }

    @Sendable static func delete(request: Request) async throws -> Response {
        try await request.upgradeHooks.delete(try request.uuidParameter("upgrade hook"))
        request.notice("The upgrade hook was deleted; its sender is now answered 404.")
        return request.redirect(to: SiteURL.upgradeHooks.relative)
    }

    @Sendable static func setAutoUpgrade(request: Request) async throws -> Response {
        let query = QueryParameters(request.body.string)
        guard let applicationID = query.first("application").flatMap(UUID.init(uuidString:)),
            let environmentID = query.first("environment").flatMap(UUID.init(uuidString:))
        else {
            return try await render(request, error: "choose an application and an environment", status: .badRequest)
        }
        do {
            let enabled = query.first("enabled") == "on"
            _ = try await request.upgradeHooks.setAutoUpgrade(
                applicationID: applicationID, environmentID: environmentID, enabled: enabled, branches: query.first("branches") ?? "")
            request.notice(enabled ? "Auto-upgrade is on." : "Auto-upgrade is off.")
            return request.redirect(to: SiteURL.upgradeHooks.relative)
        } catch let error as FlotillaError {
            return try await render(request, error: error.message, status: error.status)
        }
    }
}
