import Vapor

/// JSON shapes of the REST API (`/api/v1`), described in `OpenAPIDocument`. The shapes of the
/// inventory resources sit beside their handlers (`VMsAPI.swift`, `JobsAPI.swift`…) in
/// `extension API`.
enum API {
    struct Credentials: Content {
        var username: String
        var password: String
    }

    struct UserBody: Content {
        var id: UUID
        var username: String
        var role: UserRole
        var email: String?
        var fullName: String?
        var createdAt: Date?
        var lastSignInAt: Date?

        init(_ user: User) throws {
            id = try user.requireID()
            username = user.username
            role = user.role
            email = user.email
            fullName = user.fullName
            createdAt = user.createdAt
            lastSignInAt = user.lastSignInAt
        }
    }

    struct NewUser: Content {
        var username: String
        var password: String
        var passwordConfirmation: String
        var role: String
        var email: String? = nil
        var fullName: String? = nil
    }

    struct UserChanges: Content {
        var password: String?
        var passwordConfirmation: String?
        var role: String?
        /// Absent leaves it as it is; blank removes it.
        var email: String? = nil
        var fullName: String? = nil
    }

    struct PasswordChange: Content {
        var currentPassword: String
        var password: String
        var passwordConfirmation: String
    }

    struct LogEntryBody: Content {
        var id: Int
        var kind: String
        var time: Date
        var vmName: String?
        var vmRole: String?
        var `operator`: String?
        var operatorIP: String?
        var action: String
        var result: String
        var details: String

        init(_ entry: LogEntry) {
            id = entry.id ?? 0
            kind = entry.kind
            time = entry.time
            vmName = entry.vmName
            vmRole = entry.vmRole
            self.operator = entry.operatorName
            operatorIP = entry.operatorIP
            action = entry.action
            result = entry.result
            details = entry.details
        }
    }

    struct DeletedLogs: Content {
        var deleted: Int
    }

    struct BackupBody: Content {
        var name: String
        var entries: Int
        var size: Int
    }

    struct NewToken: Content {
        var name: String
        /// Absent: valid until revoked.
        var expiresInDays: Int?
    }

    struct TokenReference: Content {
        var id: UUID
    }

    struct TokenBody: Content {
        var id: UUID
        var name: String
        var createdAt: Date?
        var lastUsedAt: Date?
        var expiresAt: Date?
        /// Present only in the answer that creates the token.
        var token: String?

        init(_ token: APIToken, secret: String? = nil) throws {
            id = try token.requireID()
            name = token.name
            createdAt = token.createdAt
            lastUsedAt = token.lastUsedAt
            expiresAt = token.expiresAt
            self.token = secret
        }
    }

    struct Done: Content {
        var ok = true
    }
}
