import Vapor

/// `/api/v1/tokens`: the signed-in user's personal API tokens; `/api/v1/users/:id/tokens`:
/// any user's tokens, for system administrators.
enum TokensAPI {
    static func register(_ api: any RoutesBuilder) {
        let tokens = api.grouped("tokens")
        tokens.get(use: list).requires(.manageOwnTokens)
        tokens.post(use: create).requires(.manageOwnTokens)
        tokens.delete(use: revokeFromBody).requires(.manageOwnTokens)
        tokens.delete(":id", use: revoke).requires(.manageOwnTokens)

        let usersTokens = api.grouped("users", ":id", "tokens")
        usersTokens.get(use: listOfUser).requires(.manageUserTokens)
        usersTokens.delete(":tokenID", use: revokeOfUser).requires(.manageUserTokens)
    }

    @Sendable static func list(request: Request) async throws -> [API.TokenBody] {
        try await request.apiTokens.list(for: try request.user).map { try API.TokenBody($0) }
    }

    @Sendable static func create(request: Request) async throws -> Response {
        let body = try request.content.decode(API.NewToken.self)
        let (token, secret) = try await request.apiTokens.create(named: body.name, expiresInDays: body.expiresInDays, for: try request.user)
        await request.audit(.operation, action: "token.create", result: .success, details: "created API token '\(token.name)'")
        let response = try await API.TokenBody(token, secret: secret).encodeResponse(status: .created, for: request)
        response.headers.cacheControl = .init(noStore: true)
        return response
    }

    @Sendable static func revoke(request: Request) async throws -> HTTPStatus {
        guard let id = request.parameters.get("id", as: UUID.self) else { throw FlotillaError.notFound("no such token") }
        _ = try await request.revokeToken(id, of: try request.user)
        return .noContent
    }

    /// `DELETE /api/v1/tokens` with `{"id": …}` in the body.
    @Sendable static func revokeFromBody(request: Request) async throws -> HTTPStatus {
        _ = try await request.revokeToken(try request.content.decode(API.TokenReference.self).id, of: try request.user)
        return .noContent
    }

    @Sendable static func listOfUser(request: Request) async throws -> [API.TokenBody] {
        try await request.apiTokens.list(for: try await owner(request)).map { try API.TokenBody($0) }
    }

    @Sendable static func revokeOfUser(request: Request) async throws -> HTTPStatus {
        guard let id = request.parameters.get("tokenID", as: UUID.self) else { throw FlotillaError.notFound("no such token") }
        _ = try await request.revokeToken(id, of: try await owner(request))
        return .noContent
    }

    private static func owner(_ request: Request) async throws -> User {
        guard let id = request.parameters.get("id", as: UUID.self) else { throw FlotillaError.notFound("no such user") }
        return try await request.users.find(id)
    }
}
