import Crypto
import Fluent
import Vapor

/// Password sign-in with throttling (SPEC USR, LOG-1; review findings 3, 6 and 14).
///
/// - Every attempt is recorded *before* its password is checked, so parallel guesses cannot
///   outrun the count: of any number of simultaneous attempts at most the limit get an answer.
/// - Locks are per (user name, address), plus a wider per-address lock against spraying many
///   names; a third party failing elsewhere never locks the user out.
/// - Per user name, failures beyond the limit from all addresses together slow every attempt
///   on that name down (growing delay, capped), which costs no CPU and locks nobody out.
/// - Names are kept in the failure table as digests, and a name that is no user's is logged
///   as "unknown user": people type passwords into the name field.
///
/// Failures are kept in the database, so every instance sharing it sees the same counts.
struct SignIn {
    let database: any Database
    let passwords: AsyncPasswordHasher
    let failureLimit: Int
    let lockout: TimeInterval
    let logger: Logger

    /// A bcrypt hash of a random password, checked when the user does not exist so that
    /// unknown names take as long as known ones.
    private static let decoyHash = "$2b$12$CSioxcb6WoGssSwQ5XUr/O/3UD4gFycFzcRBNxIByZFCb0bSWs1K2"
    static let unknownUser = "unknown user"
    /// Failures from one address, over all names, that lock the address: names × the limit.
    static let namesPerAddress = 3
    /// Delay added per failure on a name beyond the limit, and its cap.
    static let delayStep: TimeInterval = 0.25
    static let maximumDelay: TimeInterval = 3

    func attempt(username: String, password: String, ip: String) async throws -> User {
        guard !username.isEmpty, !password.isEmpty else {
            throw FlotillaError(.unauthenticated, "user name and password are required")
        }
        let user =
            username.count <= UserAdministration.maximumUsernameLength
            ? try await User.query(on: database).filter(\.$username == username).first()
            : nil
        let actor = AuditLog.Actor(name: user?.username ?? Self.unknownUser, ip: ip)
        let name = Self.digest(of: username)
        let attempt = LoginFailure(username: name, ip: ip, at: Date())
        try await attempt.create(on: database)
        if let wait = try await lockoutRemaining(name: name, ip: ip, excluding: try attempt.requireID()) {
            try await attempt.delete(on: database)
            await AuditLog.record(
                .login, action: "login", result: .denied,
                details: "sign-in refused: locked out for another \(wait) s after repeated failures",
                by: actor, on: database, logger: logger)
            throw FlotillaError(.tooManyAttempts, "too many failed sign-ins; try again in \(wait) seconds")
        }
        let delay = try await delayForName(name)
        if delay > 0 { try await Task.sleep(for: .seconds(delay)) }
        let verified = try await passwords.verify(password, created: user?.passwordHash ?? Self.decoyHash).get()
        let matches = verified && password.utf8.count <= UserAdministration.maximumPasswordBytes
        guard let user, matches else {
            await AuditLog.record(
                .login, action: "login", result: .failure, details: "wrong user name or password",
                by: actor, on: database, logger: logger)
            throw FlotillaError(.unauthenticated, "wrong user name or password")
        }
        try await LoginFailure.query(on: database).filter(\.$username == name).filter(\.$ip == ip).delete()
        try await UserAdministration.recordSignIn(of: user, on: database)
        await AuditLog.record(
            .login, action: "login", result: .success, details: "signed in",
            by: actor, on: database, logger: logger)
        return user
    }

    static func digest(of username: String) -> String {
        SHA256.hash(data: Data(username.utf8)).hex
    }

    /// Seconds left of a lockout of this (name, address) or of the address, or nil.
    private func lockoutRemaining(name: String, ip: String, excluding current: UUID) async throws -> Int? {
        let now = Date()
        let windowStart = now.addingTimeInterval(-lockout)
        try await LoginFailure.query(on: database).filter(\.$at < now.addingTimeInterval(-86_400)).delete()
        let pair = try await LoginFailure.query(on: database)
            .filter(\.$username == name).filter(\.$ip == ip).filter(\.$at > windowStart).filter(\.$id != current)
            .sort(\.$at, .descending).range(0..<failureLimit).all()
        let address = try await LoginFailure.query(on: database)
            .filter(\.$ip == ip).filter(\.$at > windowStart).filter(\.$id != current)
            .sort(\.$at, .descending).range(0..<(failureLimit * Self.namesPerAddress)).all()
        let waits = [(pair, failureLimit), (address, failureLimit * Self.namesPerAddress)].compactMap { recent, limit -> Int? in
            guard recent.count >= limit, let oldest = recent.last else { return nil }
            return max(1, Int(oldest.at.addingTimeInterval(lockout).timeIntervalSince(now).rounded(.up)))
        }
        return waits.max()
    }

    /// The slow-down for a name failing from many addresses at once.
    private func delayForName(_ name: String) async throws -> TimeInterval {
        let recent = try await LoginFailure.query(on: database)
            .filter(\.$username == name).filter(\.$at > Date().addingTimeInterval(-lockout)).count()
        let beyond = recent - 1 - failureLimit
        return beyond > 0 ? min(Double(beyond) * Self.delayStep, Self.maximumDelay) : 0
    }
}

extension Request {
    var signIn: SignIn {
        let config = application.flotilla.config
        return SignIn(
            database: db, passwords: password.async, failureLimit: config.loginFailureLimit,
            lockout: TimeInterval(config.loginLockoutSeconds), logger: logger)
    }
}
