import Fluent
import Vapor

/// Password sign-in with throttling per user name and per IP (SPEC USR, LOG-1).
///
/// Failures are kept in the database, so every instance sharing it sees the same lockout.
struct SignIn {
    let database: any Database
    let passwords: AsyncPasswordHasher
    let failureLimit: Int
    let lockout: TimeInterval
    let logger: Logger

    /// A bcrypt hash of a random password, checked when the user does not exist so that
    /// unknown names take as long as known ones.
    private static let decoyHash = "$2b$12$CSioxcb6WoGssSwQ5XUr/O/3UD4gFycFzcRBNxIByZFCb0bSWs1K2"

    func attempt(username: String, password: String, ip: String) async throws -> User {
        let actor = AuditLog.Actor(name: String(username.prefix(UserAdministration.maximumUsernameLength)), ip: ip)
        guard !username.isEmpty, !password.isEmpty else {
            throw FlotillaError(.unauthenticated, "user name and password are required")
        }
        if let wait = try await lockoutRemaining(username: username, ip: ip) {
            await AuditLog.record(.login, action: "login", result: .denied,
                                  details: "sign-in refused: locked out for another \(wait) s after repeated failures",
                                  by: actor, on: database, logger: logger)
            throw FlotillaError(.tooManyAttempts, "too many failed sign-ins; try again in \(wait) seconds")
        }
        let user = username.count <= UserAdministration.maximumUsernameLength
            ? try await User.query(on: database).filter(\.$username == username).first()
            : nil
        let digest = user?.passwordHash ?? Self.decoyHash
        let verified = try await passwords.verify(password, created: digest).get()
        let matches = verified && password.utf8.count <= UserAdministration.maximumPasswordBytes
        guard let user, matches else {
            try await LoginFailure(username: actor.name ?? "", ip: ip, at: Date()).create(on: database)
            await AuditLog.record(.login, action: "login", result: .failure, details: "wrong user name or password",
                                  by: actor, on: database, logger: logger)
            throw FlotillaError(.unauthenticated, "wrong user name or password")
        }
        try await LoginFailure.query(on: database).filter(\.$username == user.username).delete()
        await AuditLog.record(.login, action: "login", result: .success, details: "signed in",
                              by: actor, on: database, logger: logger)
        return user
    }

    /// Seconds left of a lockout, or nil when sign-in may be tried.
    private func lockoutRemaining(username: String, ip: String) async throws -> Int? {
        let now = Date()
        let windowStart = now.addingTimeInterval(-lockout)
        try await LoginFailure.query(on: database).filter(\.$at < now.addingTimeInterval(-86_400)).delete()
        for filter in [(\LoginFailure.$username, username), (\LoginFailure.$ip, ip)] {
            let recent = try await LoginFailure.query(on: database)
                .filter(filter.0 == filter.1)
                .filter(\.$at > windowStart)
                .sort(\.$at, .descending)
                .range(0..<failureLimit)
                .all()
            if recent.count >= failureLimit, let oldest = recent.last {
                return max(1, Int((oldest.at.addingTimeInterval(lockout).timeIntervalSince(now)).rounded(.up)))
            }
        }
        return nil
    }
}

extension Request {
    var signIn: SignIn {
        let config = application.flotilla.config
        return SignIn(database: db, passwords: password.async, failureLimit: config.loginFailureLimit,
                      lockout: TimeInterval(config.loginLockoutSeconds), logger: logger)
    }
}
