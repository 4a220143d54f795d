import Fluent
import FluentSQL
import Vapor

/// Looks the session cookie up, with its user, before Vapor's sessions middleware runs: one
/// statement per request, read afresh every time (no cache), so a session ended or a user
/// deleted or demoted elsewhere counts on the next request. An unknown or expired ID is taken
/// off the request (and its cookie expired on the response), so Vapor never turns it into a
/// new, empty session row.
struct SessionLoader: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let name = request.application.sessions.configuration.cookieName
        guard let cookie = request.cookies[name]?.string else {
            return try await next.respond(to: request)
        }
        if let loaded = try await Self.load(digest: DatabaseSessions.digest(of: cookie), on: request.db) {
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
    private static func load(digest: String, on database: any Database) async throws -> LoadedSession? {
        guard let sql = database as? any SQLDatabase else { throw FlotillaError(.unavailable, "sessions need an SQL database") }
        guard
            let row = try await sql.raw(
                """
                SELECT u.*, s.data AS session_data FROM browser_sessions s JOIN users u ON u.id = s.user_id
                WHERE s.key_digest = \(bind: digest) AND s.expires_at > \(bind: Date())
                """
            ).first(),
            let values = try? DatabaseSessions.decode(row.decode(column: "session_data", as: String.self))
        else { return nil }
        return LoadedSession(keyDigest: digest, values: values, user: try User(row: row))
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
