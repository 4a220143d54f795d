import Fluent
import Vapor

/// Personal API tokens, stored as digests (SPEC BEY-3, BEY-5): created, listed and revoked by
/// their owner, and listed and revoked by a system administrator for any user.
struct APITokens {
    let database: any Database

    /// The longest lifetime a token may be given, in days.
    static let maximumLifetimeDays = 3650

    /// Creates a token, valid for `days` days or until revoked; the secret is returned here once.
    func create(named name: String, expiresInDays days: Int?, for user: User) async throws -> (APIToken, secret: String) {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.count <= 64 else {
            throw FlotillaError.validation("token name is required and has at most 64 characters")
        }
        if let days, !(1...Self.maximumLifetimeDays).contains(days) {
            throw FlotillaError.validation("a token expires after 1 to \(Self.maximumLifetimeDays) days, or never")
        }
        let secret = APIToken.generateSecret()
        let token = APIToken(
            userID: try user.requireID(), name: trimmed, tokenDigest: APIToken.digest(of: secret),
            expiresAt: days.map { Date().addingTimeInterval(TimeInterval($0) * 86_400) })
        try await token.create(on: database)
        return (token, secret)
    }

    func list(for user: User) async throws -> [APIToken] {
        try await APIToken.query(on: database).filter(\.$user.$id == user.requireID()).sort(\.$createdAt, .descending).all()
    }

    /// Revokes one of the user's tokens (a token of another user is "no such token").
    func revoke(_ id: UUID, of user: User) async throws -> APIToken {
        guard
            let token = try await APIToken.query(on: database)
                .filter(\.$id == id).filter(\.$user.$id == user.requireID()).first()
        else {
            throw FlotillaError.notFound("no such token")
        }
        try await token.delete(on: database)
        return token
    }
}

extension Request {
    var apiTokens: APITokens { APITokens(database: db) }

    /// Revokes a token of `owner` and logs it, naming the owner when it is someone else's.
    func revokeToken(_ id: UUID, of owner: User) async throws -> APIToken {
        let token = try await apiTokens.revoke(id, of: owner)
        let whose = owner.id == auth.get(User.self)?.id ? "" : " of '\(owner.username)'"
        await audit(.operation, action: "token.revoke", result: .success, details: "revoked API token '\(token.name)'\(whose)")
        return token
    }
}
