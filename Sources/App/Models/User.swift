import Fluent
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
