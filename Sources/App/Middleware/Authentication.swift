import Fluent
import Vapor

/// Marks that the sessions middleware has run, so pages may use the session.
struct SessionsReady: AsyncMiddleware {
    struct Key: StorageKey {
        typealias Value = Bool
    }

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        request.storage[Key.self] = true
        return try await next.respond(to: request)
    }
}

/// Signs the request's user in from the session. The session's lifetime is enforced where it
/// is stored (`DatabaseSessions`), so an expired session never reaches here.
struct SessionAuthenticator: AsyncMiddleware {
    static let userKey = "user"

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        if request.hasSession, let idText = request.session.data[Self.userKey] {
            if let id = UUID(uuidString: idText), let user = try await User.find(id, on: request.db) {
                request.auth.login(user)
            } else {
                request.session.destroy()
            }
        }
        return try await next.respond(to: request)
    }
}

extension Request {
    /// Starts a fresh session for the user (a new session ID, so a planted one is useless).
    func startSession(for user: User) async throws {
        if let old = session.id {
            try await application.sessions.driver.deleteSession(old, for: self).get()
        }
        session.id = nil
        session.data = SessionData()
        session.data[SessionAuthenticator.userKey] = try user.requireID().uuidString
        session.data[CSRFGuard.sessionKey] = CSRFGuard.newToken()
        auth.login(user)
    }

    func endSession() {
        auth.logout(User.self)
        if hasSession { session.destroy() }
    }
}

/// Signs the request's user in from `Authorization: Bearer <personal API token>`.
struct BearerTokenAuthenticator: AsyncMiddleware {
    /// How stale a token's recorded last use may get: reading requests write at most this often.
    static let lastUseResolution: TimeInterval = 60

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        // Prometheus' bearer token on `/metrics` is the metrics token, checked by that route.
        if request.route?.requiredAction != .scrapePlatformMetrics, let bearer = request.headers.bearerAuthorization {
            let digest = APIToken.digest(of: bearer.token)
            guard
                let token = try await APIToken.query(on: request.db)
                    .filter(\.$tokenDigest == digest).with(\.$user).first()
            else {
                throw FlotillaError(.unauthenticated, "the API token is not valid")
            }
            let now = Date()
            if let expiresAt = token.expiresAt, expiresAt <= now {
                throw FlotillaError(.unauthenticated, "the API token has expired")
            }
            if token.lastUsedAt.map({ now.timeIntervalSince($0) >= Self.lastUseResolution }) ?? true {
                try await APIToken.query(on: request.db).filter(\.$id == token.requireID()).set(\.$lastUsedAt, to: now).update()
            }
            request.auth.login(token.user)
            request.storage[AuthenticatedByTokenKey.self] = true
        }
        return try await next.respond(to: request)
    }
}

private struct AuthenticatedByTokenKey: StorageKey {
    typealias Value = Bool
}

extension Request {
    /// Token-authenticated requests carry no cookie, so they need no CSRF token.
    var isAuthenticatedByToken: Bool { storage[AuthenticatedByTokenKey.self] ?? false }

    /// Whether the request is for the JSON API (errors are JSON, not pages).
    var isAPIRequest: Bool { url.path.hasPrefix("/api/") }

    /// The signed-in user; the permission guard has already refused anonymous requests.
    var user: User {
        get throws {
            guard let user = auth.get(User.self) else {
                throw FlotillaError(.unauthenticated, "sign in first")
            }
            return user
        }
    }
}
