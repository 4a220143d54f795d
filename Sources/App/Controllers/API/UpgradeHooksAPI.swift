import Vapor

/// `POST /api/v1/hooks/{format}/{id}`: commits arriving from SVN post-commit hooks and Git
/// servers' push webhooks (issue 12 §6). No session: each hook proves itself with its own
/// token or signature (`HookDelivery.verify`); an unknown hook is a bare 404.
enum UpgradeHooksAPI {
    static func register(_ api: any RoutesBuilder) {
        api.on(.POST, "hooks", ":format", ":id", body: .collect(maxSize: HookDelivery.maximumBody), use: receive)
            .requires(.receiveUpgradeHook)
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
    /// What a hook's sender is answered: never more than it already knows.
    struct HookAnswer: Content {
        /// `queued`, or why nothing was queued (`ignored: ping`, `accepted: no auto-upgrade follows it`).
        var result: String
        /// How many application-environment pairs the commit was queued for.
        var queued: Int
    }
}
