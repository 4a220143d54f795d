import Crypto
import Fluent
import Vapor

/// Browser sessions in the `browser_sessions` table (review findings 7 and 13, issue 8 §5).
///
/// - Only a SHA-256 digest of the session ID is stored.
/// - A row is written when a session starts and when its values change, never because a
///   request merely read it.
/// - Anonymous visitors get no row: a session starts only at sign-in.
/// - Expired rows are refused and purged whenever a session starts.
/// - Every write forgets this instance's sign-in verdicts (`AuthenticationVerdicts`); a new
///   row does so through the model middleware.
/// - Reading a session and keeping it unchanged answer at once from what `SessionLoader` read
///   (no task is started for them: they run on every signed-in request).
struct DatabaseSessions: SessionDriver {
    func createSession(_ data: SessionData, for request: Request) -> EventLoopFuture<SessionID> {
        request.eventLoop.makeFutureWithTask {
            let id = [UInt8].random(count: 32).base64URLEncodedString()
            let now = Date()
            let lifetime = TimeInterval(request.application.flotilla.config.sessionLifetimeHours * 3600)
            try await BrowserSession.query(on: request.db).filter(\.$expiresAt < now).delete()
            try await BrowserSession(
                keyDigest: Self.digest(of: id), userID: Self.userID(in: data), data: try Self.encode(data),
                expiresAt: now.addingTimeInterval(lifetime), updatedAt: now
            ).create(on: request.db)
            return SessionID(string: id)
        }
    }

    func readSession(_ sessionID: SessionID, for request: Request) -> EventLoopFuture<SessionData?> {
        guard let loaded = request.loadedSession, loaded.keyDigest == Self.digest(of: sessionID.string) else {
            return request.eventLoop.makeSucceededFuture(nil)
        }
        return request.eventLoop.makeSucceededFuture(loaded.values)
    }

    func updateSession(_ sessionID: SessionID, to data: SessionData, for request: Request) -> EventLoopFuture<SessionID> {
        let digest = Self.digest(of: sessionID.string)
        if let loaded = request.loadedSession, loaded.keyDigest == digest, loaded.values == data {
            return request.eventLoop.makeSucceededFuture(sessionID)
        }
        return request.eventLoop.makeFutureWithTask {
            try await BrowserSession.query(on: request.db).filter(\.$keyDigest == digest)
                .set(\.$data, to: try Self.encode(data))
                .set(\.$userID, to: Self.userID(in: data))
                .set(\.$updatedAt, to: Date())
                .update()
            request.application.authenticationVerdicts.forgetAll()
            return sessionID
        }
    }

    func deleteSession(_ sessionID: SessionID, for request: Request) -> EventLoopFuture<Void> {
        request.eventLoop.makeFutureWithTask {
            try await BrowserSession.query(on: request.db).filter(\.$keyDigest == Self.digest(of: sessionID.string)).delete()
            request.application.authenticationVerdicts.forgetAll()
        }
    }

    static func digest(of id: String) -> String {
        SHA256.hash(data: Data(id.utf8)).hex
    }

    private static func userID(in data: SessionData) -> UUID? {
        data[SessionAuthenticator.userKey].flatMap(UUID.init(uuidString:))
    }

    private static func encode(_ data: SessionData) throws -> String {
        String(decoding: try JSONEncoder().encode(data), as: UTF8.self)
    }

    static func decode(_ text: String) throws -> SessionData {
        try JSONDecoder().decode(SessionData.self, from: Data(text.utf8))
    }
}
