import Vapor

/// `/api/v1/tokens`: the signed-in user's personal API tokens.
enum TokensAPI {
    static func register(_ api: any RoutesBuilder) {
        let tokens = api.grouped("tokens")
        tokens.get(use: list).requires(.manageOwnTokens)
        tokens.post(use: create).requires(.manageOwnTokens)
        tokens.delete(use: revokeFromBody).requires(.manageOwnTokens)
        tokens.delete(":id", use: revoke).requires(.manageOwnTokens)
    }

    @Sendable static func list(request: Request) async throws -> [API.TokenBody] {
        try await request.apiTokens.list(for: try request.user).map { try API.TokenBody($0) }
    }

    @Sendable static func create(request: Request) async throws -> Response {
        let body = try request.content.decode(API.NewToken.self)
        let (token, secret) = try await request.apiTokens.create(named: body.name, for: try request.user)
        await request.audit(.operation, action: "token.create", result: .success, details: "created API token '\(token.name)'")
        let response = try await API.TokenBody(token, secret: secret).encodeResponse(status: .created, for: request)
        response.headers.cacheControl = .init(noStore: true)
        return response
    }

    @Sendable static func revoke(request: Request) async throws -> HTTPStatus {
        guard let id = request.parameters.get("id", as: UUID.self) else { throw FlotillaError.notFound("no such token") }
        return try await revoke(id, request: request)
    }

    /// `DELETE /api/v1/tokens` with `{"id": …}` in the body.
    @Sendable static func revokeFromBody(request: Request) async throws -> HTTPStatus {
        try await revoke(try request.content.decode(API.TokenReference.self).id, request: request)
    }

    private static func revoke(_ id: UUID, request: Request) async throws -> HTTPStatus {
        let token = try await request.apiTokens.revoke(id, of: try request.user)
        await request.audit(.operation, action: "token.revoke", result: .success, details: "revoked API token '\(token.name)'")
        return .noContent
    }
}
