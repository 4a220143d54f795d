import Fluent
import Vapor

/// Personal API tokens: created and revoked by their owner, stored as digests (SPEC BEY-3, BEY-5).
struct APITokens {
    let database: any Database

    /// Creates a token; the secret is returned here once and never again.
    func create(named name: String, for user: User) async throws -> (APIToken, secret: String) {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.count <= 64 else {
            throw FlotillaError.validation("token name is required and has at most 64 characters")
        }
        let secret = APIToken.generateSecret()
        let token = APIToken(userID: try user.requireID(), name: trimmed, tokenDigest: APIToken.digest(of: secret))
        try await token.create(on: database)
        return (token, secret)
    }

    func list(for user: User) async throws -> [APIToken] {
        try await APIToken.query(on: database).filter(\.$user.$id == user.requireID()).sort(\.$createdAt, .descending).all()
    }

    /// Revokes one of the user's own tokens.
    func revoke(_ id: UUID, of user: User) async throws -> APIToken {
        guard let token = try await APIToken.query(on: database)
            .filter(\.$id == id).filter(\.$user.$id == user.requireID()).first() else {
            throw FlotillaError.notFound("no such token")
        }
        try await token.delete(on: database)
        return token
    }
}

extension Request {
    var apiTokens: APITokens { APITokens(database: db) }
}
