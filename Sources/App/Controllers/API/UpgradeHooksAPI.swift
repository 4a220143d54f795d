import Vapor

/// `POST /api/v1/hooks/{format}/{id}`: commits arriving from SVN post-commit hooks and Git
/// servers' push webhooks (issue 12 §6). No session: each hook proves itself with its own
/// token or signature (`HookDelivery.verify`); an unknown hook is a bare 404.
/// `/api/v1/upgrade-hooks`: the hooks themselves, as on the hooks page (secret answered once).
enum UpgradeHooksAPI {
    static func register(_ api: any RoutesBuilder) {
        api.on(.POST, "hooks", ":format", ":id", body: .collect(maxSize: HookDelivery.maximumBody), use: receive)
            .requires(.receiveUpgradeHook)
        let hooks = api.grouped("upgrade-hooks")
        hooks.get(use: list).requires(.viewUpgrades)
        hooks.post(use: add).requires(.manageUpgradeHooks)
        hooks.delete(":id", use: delete).requires(.manageUpgradeHooks)
    }

    struct NewHook: Content {
        /// `svn`, `github`, `gitlab`, `gitea` or `generic`.
        var format: String
        var repositoryURL: String
    }

    @Sendable static func list(request: Request) async throws -> [API.UpgradeHookBody] {
        let base = request.hookBaseURL
        return try await request.upgradeHooks.hooks().map { try API.UpgradeHookBody($0, base: base, secret: nil) }
    }

    @Sendable static func add(request: Request) async throws -> Response {
        let input = try request.content.decode(NewHook.self)
        let (hook, secret) = try await request.upgradeHooks.add(format: input.format, repositoryURL: input.repositoryURL)
        return try await API.UpgradeHookBody(hook, base: request.hookBaseURL, secret: secret)
            .encodeResponse(status: .created, for: request)
    }

    @Sendable static func delete(request: Request) async throws -> HTTPStatus {
        try await request.upgradeHooks.delete(try request.uuidParameter("upgrade hook"))
        return .noContent
    }

    @Sendable static func receive(request: Request) async throws -> Response {
        guard let format = request.parameters.get("format").flatMap(UpgradeHookFormat.init(rawValue:)) else {
            throw Abort(.notFound)
        }
        let body = request.body.data.map { Data($0.readableBytesView) } ?? Data()
        let answer = try await request.hookReception.receive(
            format: format, hookID: request.parameters.get("id", as: UUID.self), headers: request.headers, body: body,
            from: request.operatorIP)
        let response = try await answer.encodeResponse(for: request)
        response.status = answer.queued > 0 ? .accepted : .ok
        return response
    }
}

extension Request {
    var hookReception: HookReception {
        HookReception(
            database: db, secrets: application.flotilla.secrets, quietSeconds: application.flotilla.config.upgradeQuietSeconds,
            logger: logger)
    }
}

extension API {
    /// An upgrade hook as the API shows it: where its sender posts, never its secret again.
    struct UpgradeHookBody: Content {
        var id: UUID
        var format: String
        var repositoryURL: String
        /// The URL the sender posts to.
        var endpoint: String
        /// SVN: the line for the repository's `hooks/post-commit` (with the token only at creation).
        var postCommitLine: String?
        var createdBy: String?
        var createdAt: Date?
        var lastDeliveryAt: Date?
        var lastResult: String?
        /// The token or signing secret: only in the answer that creates the hook.
        var secret: String?

        init(_ hook: UpgradeHook, base: String, secret: String?) throws {
            id = try hook.requireID()
            format = hook.format
            repositoryURL = hook.repositoryURL
            endpoint = try UpgradeHooks.endpoint(hook, base: base)
            postCommitLine =
                hook.format == UpgradeHookFormat.svn.rawValue ? UpgradeHooks.postCommitLine(endpoint: endpoint, token: secret) : nil
            createdBy = hook.createdBy
            createdAt = hook.createdAt
            lastDeliveryAt = hook.lastDeliveryAt
            lastResult = hook.lastResult
            self.secret = secret
        }
    }

    /// What a hook's sender is answered: never more than it already knows.
    struct HookAnswer: Content {
        /// `queued`, or why nothing was queued (`ignored: ping`, `accepted: no auto-upgrade follows it`).
        var result: String
        /// How many application-environment pairs the commit was queued for.
        var queued: Int
    }
}
