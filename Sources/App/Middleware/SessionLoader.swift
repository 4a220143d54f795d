import Fluent
import Vapor

/// Looks the session cookie up before Vapor's sessions middleware runs. An unknown or expired
/// ID is taken off the request (and its cookie expired on the response), so Vapor never turns
/// it into a new, empty session row.
struct SessionLoader: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let name = request.application.sessions.configuration.cookieName
        guard let cookie = request.cookies[name]?.string else {
            return try await next.respond(to: request)
        }
        let digest = DatabaseSessions.digest(of: cookie)
        if let row = try await BrowserSession.query(on: request.db).filter(\.$keyDigest == digest)
            .filter(\.$expiresAt > Date()).first(),
            let values = try? DatabaseSessions.decode(row.data)
        {
            request.storage[LoadedSessionKey.self] = LoadedSession(keyDigest: digest, values: values)
            return try await next.respond(to: request)
        }
        request.cookies[name] = nil
        let response = try await next.respond(to: request)
        if response.cookies[name] == nil {
            response.cookies[name] = .expired
        }
        return response
    }
}

/// The stored session a request arrived with, as read from the database.
struct LoadedSession: Sendable {
    var keyDigest: String
    var values: SessionData
}

private struct LoadedSessionKey: StorageKey {
    typealias Value = LoadedSession
}

extension Request {
    var loadedSession: LoadedSession? { storage[LoadedSessionKey.self] }
}
