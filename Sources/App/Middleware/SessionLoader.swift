import Fluent
import FluentSQL
import Vapor

/// Looks the session cookie up, with its user, before Vapor's sessions middleware runs: one
/// statement, or none while this instance holds a fresh verdict for it
/// (`AuthenticationVerdicts`: a session ended or a user deleted or demoted counts on the next
/// request here, and within a second on other instances). An unknown or expired ID is taken
/// off the request (and its cookie expired on the response), so Vapor never turns it into a
/// new, empty session row.
struct SessionLoader: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let name = request.application.sessions.configuration.cookieName
        guard let cookie = request.cookies[name]?.string else {
            return try await next.respond(to: request)
        }
        if let loaded = try await Self.load(digest: DatabaseSessions.digest(of: cookie), for: request) {
            request.storage[LoadedSessionKey.self] = loaded
            return try await next.respond(to: request)
        }
        request.cookies[name] = nil
        let response = try await next.respond(to: request)
        if response.cookies[name] == nil {
            response.cookies[name] = .expired
        }
        return response
    }

    /// The unexpired session stored under `digest` and its user. Every session belongs to a
    /// user (sessions start at sign-in); one whose values cannot be read counts as unknown.
    private static func load(digest: String, for request: Request) async throws -> LoadedSession? {
        let verdicts = request.application.authenticationVerdicts
        let now = Date()
        if let kept = verdicts.session(digest, at: now) {
            guard kept.expiresAt > now else { return nil }
            return LoadedSession(keyDigest: digest, values: kept.values, user: try User(row: kept.userRow))
        }
        guard let sql = request.signInDatabase as? any SQLDatabase else {
            throw FlotillaError(.unavailable, "sessions need an SQL database")
        }
        let generation = verdicts.generation
        guard
            let row = try await sql.raw(
                """
                SELECT u.*, s.data AS session_data, s.expires_at AS session_expires_at
                FROM browser_sessions s JOIN users u ON u.id = s.user_id
                WHERE s.key_digest = \(bind: digest) AND s.expires_at > \(bind: now)
                """
            ).first(),
            let values = try? DatabaseSessions.decode(row.decode(column: "session_data", as: String.self))
        else { return nil }
        let user = try User(row: row)
        verdicts.keep(
            session: .init(values: values, userRow: row, expiresAt: try row.decode(column: "session_expires_at", as: Date.self)),
            for: digest, readAt: now, generation: generation)
        return LoadedSession(keyDigest: digest, values: values, user: user)
    }
}

/// The stored session a request arrived with, as read from the database, and its user.
struct LoadedSession: Sendable {
    var keyDigest: String
    var values: SessionData
    var user: User
}

private struct LoadedSessionKey: StorageKey {
    typealias Value = LoadedSession
}

extension Request {
    var loadedSession: LoadedSession? { storage[LoadedSessionKey.self] }
}
