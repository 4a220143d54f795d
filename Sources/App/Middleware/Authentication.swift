import Fluent
import FluentSQL
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

/// Signs the request's user in from the session. `SessionLoader` has read the session and its
/// user in one statement and refused expired sessions, so only a session that names another
/// user than the one stored with it is left to refuse here.
struct SessionAuthenticator: AsyncMiddleware {
    static let userKey = "user"

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        if request.hasSession, let idText = request.session.data[Self.userKey] {
            if let loaded = request.loadedSession, let id = loaded.user.id, id.uuidString == idText {
                request.auth.login(loaded.user)
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
///
/// The token and its user are read in one statement, or none while this instance holds a
/// fresh verdict for the token (`AuthenticationVerdicts`): a revoked or expired token, a
/// deleted user or a changed role counts on the next request here, and within a second on
/// other instances.
struct BearerTokenAuthenticator: AsyncMiddleware {
    /// How stale a token's recorded last use may get: reading requests write at most this often.
    static let lastUseResolution: TimeInterval = 60

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        // Prometheus' bearer token on `/metrics` is the metrics token, checked by that route.
        if request.route?.requiredAction != .scrapePlatformMetrics, let bearer = request.headers.bearerAuthorization {
            let digest = APIToken.digest(of: bearer.token)
            let now = Date()
            let verdict = try await Self.verdict(digest: digest, for: request, at: now)
            if let expiresAt = verdict.expiresAt, expiresAt <= now {
                throw FlotillaError(.unauthenticated, "the API token has expired")
            }
            if verdict.lastUsedAt.map({ now.timeIntervalSince($0) >= Self.lastUseResolution }) ?? true {
                await Self.recordUse(of: verdict.tokenID, digest: digest, at: now, for: request)
            }
            request.auth.login(try User(row: verdict.userRow))
            request.storage[AuthenticatedByTokenKey.self] = true
        }
        return try await next.respond(to: request)
    }

    /// Writes the token's last use. It is bookkeeping beside the request, not part of it: a
    /// write that fails (the database busy past its timeout under a rollout's writes) is logged
    /// and skipped until the next `lastUseResolution`, and never fails a reading request.
    private static func recordUse(of tokenID: UUID, digest: String, at now: Date, for request: Request) async {
        do {
            try await APIToken.query(on: request.db).filter(\.$id == tokenID).set(\.$lastUsedAt, to: now).update()
        } catch {
            request.logger.warning("could not record the last use of API token \(tokenID): \(String(reflecting: error))")
        }
        request.application.authenticationVerdicts.noteUse(ofToken: digest, at: now)
    }

    /// The token stored under `digest` with its user, kept or read.
    private static func verdict(digest: String, for request: Request, at now: Date) async throws -> AuthenticationVerdicts.TokenVerdict {
        let verdicts = request.application.authenticationVerdicts
        if let kept = verdicts.token(digest, at: now) { return kept }
        guard let sql = request.signInDatabase as? any SQLDatabase else { throw FlotillaError(.unavailable, "tokens need an SQL database") }
        let generation = verdicts.generation
        guard
            let row = try await sql.raw(
                """
                SELECT u.*, t.id AS token_id, t.expires_at AS token_expires_at, t.last_used_at AS token_last_used_at
                FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_digest = \(bind: digest)
                """
            ).first()
        else {
            throw FlotillaError(.unauthenticated, "the API token is not valid")
        }
        let verdict = AuthenticationVerdicts.TokenVerdict(
            tokenID: try row.decode(column: "token_id", as: UUID.self), userRow: row,
            expiresAt: try row.decode(column: "token_expires_at", as: Date?.self),
            lastUsedAt: try row.decode(column: "token_last_used_at", as: Date?.self))
        verdicts.keep(token: verdict, for: digest, readAt: now, generation: generation)
        return verdict
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
