import Crypto
import Fluent
import Vapor

/// A personal API token. Only its SHA-256 digest is stored; the token is shown once.
public final class APIToken: Model, @unchecked Sendable {
    public static let schema = "api_tokens"

    @ID(key: .id) public var id: UUID?
    @Parent(key: "user_id") public var user: User
    @Field(key: "name") public var name: String
    @Field(key: "token_digest") var tokenDigest: String
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?
    /// Written at most once a minute (`BearerTokenAuthenticator`), so reads stay reads.
    @OptionalField(key: "last_used_at") public var lastUsedAt: Date?
    /// nil: valid until revoked.
    @OptionalField(key: "expires_at") public var expiresAt: Date?

    public init() {}

    init(userID: UUID, name: String, tokenDigest: String, expiresAt: Date?) {
        self.$user.id = userID
        self.name = name
        self.tokenDigest = tokenDigest
        self.expiresAt = expiresAt
    }

    /// The prefix makes leaked tokens easy to recognise by secret scanners.
    static let prefix = "flt_"

    static func generateSecret() -> String {
        prefix + [UInt8].random(count: 32).base64URLEncodedString()
    }

    static func digest(of secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).hex
    }
}

extension Array where Element == UInt8 {
    /// Base64url without padding: safe in headers, URLs and shells.
    func base64URLEncodedString() -> String {
        Data(self).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
