import Fluent
import Vapor

/// A signed-in browser's session. The cookie holds a random ID; only its SHA-256 digest is
/// stored, so a copy of the database signs nobody in.
final class BrowserSession: Model, @unchecked Sendable {
    static let schema = "browser_sessions"

    @ID(key: .id) var id: UUID?
    @Field(key: "key_digest") var keyDigest: String
    /// The signed-in user, so a password change can end that user's sessions.
    @OptionalField(key: "user_id") var userID: UUID?
    /// The session's values (`SessionData`) as JSON.
    @Field(key: "data") var data: String
    @Field(key: "expires_at") var expiresAt: Date
    @Field(key: "updated_at") var updatedAt: Date

    init() {}

    init(keyDigest: String, userID: UUID?, data: String, expiresAt: Date, updatedAt: Date) {
        self.keyDigest = keyDigest
        self.userID = userID
        self.data = data
        self.expiresAt = expiresAt
        self.updatedAt = updatedAt
    }
}
