import Fluent
import FluentSQL
import Mail
import SQLKit
import Vapor

/// User management rules (SPEC USR-1..5, USR-7), shared by the web pages, the API and the commands.
/// Every change, and every refused change, is written to the audit log here.
public struct UserAdministration: Sendable {
    public let database: any Database
    public let passwords: AsyncPasswordHasher
    public let minimumPasswordLength: Int
    public let actor: AuditLog.Actor
    public let logger: Logger
    /// The digest of the acting browser session, which a password change keeps.
    let currentSession: String?

    public init(
        database: any Database, passwords: AsyncPasswordHasher, minimumPasswordLength: Int,
        actor: AuditLog.Actor, logger: Logger
    ) {
        self.init(
            database: database, passwords: passwords, minimumPasswordLength: minimumPasswordLength,
            actor: actor, logger: logger, currentSession: nil)
    }

    init(
        database: any Database, passwords: AsyncPasswordHasher, minimumPasswordLength: Int,
        actor: AuditLog.Actor, logger: Logger, currentSession: String?
    ) {
        self.database = database
        self.passwords = passwords
        self.minimumPasswordLength = minimumPasswordLength
        self.actor = actor
        self.logger = logger
        self.currentSession = currentSession
    }

    /// bcrypt reads at most 72 bytes; longer passwords would be silently truncated.
    static let maximumPasswordBytes = 72
    static let maximumUsernameLength = 64

    public static func validateUsername(_ username: String) throws {
        guard !username.isEmpty else { throw FlotillaError.validation("user name is required") }
        guard username.count <= maximumUsernameLength else {
            throw FlotillaError.validation("user name has at most \(maximumUsernameLength) characters")
        }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard username.allSatisfy(allowed.contains), username.first.map({ $0.isLetter || $0.isNumber }) == true else {
            throw FlotillaError.validation("user name may use letters, digits, '.', '_' and '-', and starts with a letter or digit")
        }
    }

    static let maximumFullNameLength = 128

    /// An address the Mail library can write into headers and SMTP commands as it is (no line
    /// breaks, no quoting, one @, a host-name domain), so a notification cannot be redirected
    /// or carry an injected header.
    public static func validateEmail(_ email: String) throws {
        do {
            _ = try EmailAddress(email)
        } catch let error as MailError {
            throw FlotillaError.validation(error.message)
        }
    }

    /// Any text without control characters (a full name is written into mail headers).
    public static func validateFullName(_ name: String) throws {
        guard name.count <= maximumFullNameLength else {
            throw FlotillaError.validation("full name has at most \(maximumFullNameLength) characters")
        }
        guard
            !name.unicodeScalars.contains(where: {
                [.control, .lineSeparator, .paragraphSeparator].contains($0.properties.generalCategory)
            })
        else {
            throw FlotillaError.validation("full name may not contain line breaks or control characters")
        }
    }

    /// Trims and validates the contact fields; blank becomes nil.
    static func contact(email: String?, fullName: String?) throws -> (email: String?, fullName: String?) {
        let email = email?.trimmingCharacters(in: .whitespaces).nonEmpty
        let fullName = fullName?.trimmingCharacters(in: .whitespaces).nonEmpty
        if let email { try validateEmail(email) }
        if let fullName { try validateFullName(fullName) }
        return (email, fullName)
    }

    public func validatePassword(_ password: String, confirmation: String) throws {
        guard !password.isEmpty else { throw FlotillaError.validation("password is required") }
        guard password == confirmation else { throw FlotillaError.validation("password and confirmation do not match") }
        guard password.count >= minimumPasswordLength else {
            throw FlotillaError.validation("password needs at least \(minimumPasswordLength) characters")
        }
        guard password.utf8.count <= Self.maximumPasswordBytes else {
            throw FlotillaError.validation("password is longer than \(Self.maximumPasswordBytes) bytes")
        }
    }

    public func find(_ id: UUID) async throws -> User {
        guard let user = try await User.find(id, on: database) else { throw FlotillaError.notFound("no such user") }
        return user
    }

    public func find(username: String) async throws -> User? {
        try await User.query(on: database).filter(\.$username == username).first()
    }

    /// One page of users by name; `search` matches part of the user name, full name or e-mail
    /// address, ignoring case. One statement: the total rides along as an uncorrelated subquery,
    /// and the rows are read by column (no reflective model decoding); only a page past the end
    /// costs a second statement, for the total.
    public func list(page: PageRequest, search: String? = nil) async throws -> Page<User> {
        guard let sql = database as? any SQLDatabase else { throw FlotillaError(.unavailable, "users need an SQL database") }
        var filter: SQLQueryString = ""
        if let term = search?.trimmingCharacters(in: .whitespaces).lowercased().nonEmpty {
            // LIKE with its wildcards escaped: the term matches itself only.
            let escaped = term.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_")
            let pattern = "%\(escaped)%"
            filter = """
                 WHERE LOWER(username) LIKE \(bind: pattern) ESCAPE '\\' OR LOWER(full_name) LIKE \(bind: pattern) ESCAPE '\\' \
                OR LOWER(email) LIKE \(bind: pattern) ESCAPE '\\'
                """
        }
        let rows = try await sql.raw(
            """
            SELECT *, (SELECT COUNT(*) FROM users\(filter)) AS list_total FROM users\(filter)
            ORDER BY username LIMIT \(bind: page.per) OFFSET \(bind: page.offset)
            """
        ).all()
        guard let first = rows.first else {
            let total = try await sql.raw("SELECT COUNT(*) AS list_total FROM users\(filter)").first()
            return Page(items: [], total: try total?.decode(column: "list_total", as: Int.self) ?? 0, request: page)
        }
        return Page(items: try rows.map(User.init(row:)), total: try first.decode(column: "list_total", as: Int.self), request: page)
    }

    /// Notes a successful sign-in for the user list (SPEC USR-7).
    static func recordSignIn(of user: User, at time: Date = Date(), on database: any Database) async throws {
        try await User.query(on: database).filter(\.$id == user.requireID()).set(\.$lastSignInAt, to: time).update()
        user.lastSignInAt = time
    }

    public func create(
        username: String, password: String, confirmation: String, role: UserRole, email: String? = nil, fullName: String? = nil
    ) async throws -> User {
        try await audited("user.add", "adding user '\(username.prefix(Self.maximumUsernameLength))'") {
            try Self.validateUsername(username)
            let contact = try Self.contact(email: email, fullName: fullName)
            try validatePassword(password, confirmation: confirmation)
            guard try await find(username: username) == nil else {
                throw FlotillaError.conflict("a user named '\(username)' already exists")
            }
            let user = User(
                username: username, passwordHash: try await passwords.hash(password).get(), role: role, email: contact.email,
                fullName: contact.fullName)
            do {
                try await user.create(on: database)
            } catch let error as any DatabaseError where error.isConstraintFailure {
                throw FlotillaError.conflict("a user named '\(username)' already exists")
            }
            return (user, "added user '\(user.username)' as \(role.title.lowercased())")
        }
    }

    /// Changes a user's password, role, e-mail address or full name. A blank password keeps
    /// the old one; nil leaves a field as it is, a blank e-mail address or full name clears it.
    public func update(
        _ user: User, password: String?, confirmation: String?, role: UserRole?, email: String? = nil, fullName: String? = nil
    ) async throws {
        try await audited("user.edit", "editing user '\(user.username)'") {
            let contact = try Self.contact(email: email, fullName: fullName)
            if let password, !password.isEmpty {
                try validatePassword(password, confirmation: confirmation ?? "")
            } else if let confirmation, !confirmation.isEmpty {
                throw FlotillaError.validation("password and confirmation do not match")
            }
            let previousRole = user.role
            let (previousEmail, previousFullName) = (user.email, user.fullName)
            try await database.transaction { transaction in
                if let role, role != user.role, user.role == .system {
                    try await Self.ensureAnotherSystemAdministrator(than: user, on: transaction, doing: "demote")
                }
                if let password, !password.isEmpty {
                    user.passwordHash = try await passwords.hash(password).get()
                    try await endSessions(of: user, on: transaction)
                }
                if let role { user.role = role }
                if email != nil { user.email = contact.email }
                if fullName != nil { user.fullName = contact.fullName }
                try await user.save(on: transaction)
            }
            var changes: [String] = []
            if !(password ?? "").isEmpty { changes.append("password changed") }
            if previousRole != user.role { changes.append("role \(previousRole.rawValue) → \(user.role.rawValue)") }
            if email != nil, previousEmail != user.email { changes.append("e-mail \(user.email ?? "removed")") }
            if fullName != nil, previousFullName != user.fullName { changes.append("full name \(user.fullName ?? "removed")") }
            return ((), "edited user '\(user.username)': " + (changes.isEmpty ? "no changes" : changes.joined(separator: ", ")))
        }
    }

    public func changeOwnPassword(_ user: User, current: String, new: String, confirmation: String) async throws {
        try await audited("user.password", "changing own password") {
            guard try await passwords.verify(current, created: user.passwordHash).get() else {
                throw FlotillaError.validation("current password is wrong")
            }
            try validatePassword(new, confirmation: confirmation)
            user.passwordHash = try await passwords.hash(new).get()
            try await database.transaction { transaction in
                try await user.save(on: transaction)
                try await endSessions(of: user, on: transaction)
            }
            return ((), "changed own password")
        }
    }

    public func delete(_ user: User) async throws {
        try await audited("user.delete", "deleting user '\(user.username)'") {
            try await database.transaction { transaction in
                if user.role == .system {
                    try await Self.ensureAnotherSystemAdministrator(than: user, on: transaction, doing: "delete")
                }
                try await user.delete(on: transaction)
            }
            return ((), "deleted user '\(user.username)'")
        }
    }

    /// A new password ends the user's other sessions: whoever held a stolen cookie is out.
    /// Only the session making the change survives, so a reset by an administrator ends all.
    private func endSessions(of user: User, on database: any Database) async throws {
        var sessions = BrowserSession.query(on: database).filter(\.$userID == (try user.requireID()))
        if let currentSession { sessions = sessions.filter(\.$keyDigest != currentSession) }
        try await sessions.delete()
    }

    /// Runs a change and logs its outcome: the success details it returns, or why it was refused.
    private func audited<Value>(
        _ action: String, _ attempt: String,
        _ change: () async throws -> (Value, String)
    ) async throws -> Value {
        do {
            let (value, details) = try await change()
            await AuditLog.record(.operation, action: action, result: .success, details: details, by: actor, on: database, logger: logger)
            return value
        } catch let error as FlotillaError {
            await AuditLog.record(
                .operation, action: action, result: .failure, details: "\(attempt) failed: \(error.message)",
                by: actor, on: database, logger: logger)
            throw error
        }
    }

    /// SPEC USR: the last system administrator can be neither deleted nor demoted.
    private static func ensureAnotherSystemAdministrator(than user: User, on database: any Database, doing verb: String) async throws {
        let others = try await User.query(on: database)
            .filter(\.$role == .system)
            .filter(\.$id != user.requireID())
            .count()
        guard others > 0 else {
            throw FlotillaError.conflict("cannot \(verb) '\(user.username)': it is the last system administrator")
        }
    }

    /// Creates `admin` on the first start (no users yet). Returns the generated password when
    /// none was configured, so the caller can show it once.
    public func createInitialAdministrator(password configured: String?) async throws -> String? {
        guard try await User.query(on: database).count() == 0 else { return nil }
        let password = configured ?? Self.generatePassword()
        let user = User(username: "admin", passwordHash: try await passwords.hash(password).get(), role: .system)
        try await user.create(on: database)
        return configured == nil ? password : nil
    }

    static func generatePassword() -> String {
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<20).map { _ in alphabet.randomElement(using: &generator) ?? "x" })
    }
}

extension Request {
    var users: UserAdministration {
        UserAdministration(
            database: db, passwords: password.async,
            minimumPasswordLength: application.flotilla.config.passwordMinimumLength,
            actor: auditActor, logger: logger, currentSession: loadedSession?.keyDigest)
    }
}

extension Application {
    /// User administration for work outside a request (commands, start-up).
    func users(actor: AuditLog.Actor) -> UserAdministration {
        UserAdministration(
            database: db, passwords: password.async, minimumPasswordLength: flotilla.config.passwordMinimumLength,
            actor: actor, logger: logger)
    }
}

extension String {
    /// Nil for an empty string.
    var nonEmpty: String? { isEmpty ? nil : self }
}
