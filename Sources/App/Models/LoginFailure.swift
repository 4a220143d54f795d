import Fluent
import Vapor

/// A failed sign-in, kept briefly to throttle guessing per user name and per IP.
final class LoginFailure: Model, @unchecked Sendable {
    static let schema = "login_failures"

    @ID(key: .id) var id: UUID?
    @Field(key: "username") var username: String
    @Field(key: "ip") var ip: String
    @Field(key: "at") var at: Date

    init() {}

    init(username: String, ip: String, at: Date) {
        self.username = username
        self.ip = ip
        self.at = at
    }
}
