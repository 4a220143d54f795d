import Fluent
import SQLKit
import Vapor

/// A person who signs in to Flotilla (SPEC USR).
public final class User: Model, Authenticatable, @unchecked Sendable {
    public static let schema = "users"

    @ID(key: .id) public var id: UUID?
    @Field(key: "username") public var username: String
    @Field(key: "password_hash") var passwordHash: String
    @Enum(key: "role") public var role: UserRole
    /// Where notifications for the services this user owns go (SPEC USR-7); nil receives none.
    @OptionalField(key: "email") public var email: String?
    @OptionalField(key: "full_name") public var fullName: String?
    @OptionalField(key: "last_sign_in_at") public var lastSignInAt: Date?
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) public var updatedAt: Date?

    public init() {}

    init(username: String, passwordHash: String, role: UserRole, email: String? = nil, fullName: String? = nil) {
        self.username = username
        self.passwordHash = passwordHash
        self.role = role
        self.email = email
        self.fullName = fullName
    }

    public var isSystemAdministrator: Bool { role == .system }
}

extension User {
    /// A stored user read by column from a row with the `users` columns, without Fluent's
    /// reflective model decoding (a tenth of a reading request's CPU time in `perf`, issue 8 §5).
    convenience init(row: any SQLRow) throws {
        self.init(
            username: try row.decode(column: "username", as: String.self),
            passwordHash: try row.decode(column: "password_hash", as: String.self),
            role: try UserRole(parsing: try row.decode(column: "role", as: String.self)),
            email: try row.decode(column: "email", as: String?.self),
            fullName: try row.decode(column: "full_name", as: String?.self))
        id = try row.decode(column: "id", as: UUID.self)
        lastSignInAt = try row.decode(column: "last_sign_in_at", as: Date?.self)
        createdAt = try row.decode(column: "created_at", as: Date?.self)
        updatedAt = try row.decode(column: "updated_at", as: Date?.self)
        $id.exists = true
    }
}
