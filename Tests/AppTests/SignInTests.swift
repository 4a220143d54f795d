import Fluent
import XCTVapor

@testable import App

final class SignInTests: XCTestCase {
    func testFirstStartCreatesTheAdministrator() async throws {
        try await TestApp.run { app in
            let users = try await User.query(on: app.db).all()
            XCTAssertEqual(users.map(\.username), ["admin"])
            XCTAssertEqual(users.first?.role, .system)
            XCTAssertNotEqual(users.first?.passwordHash, TestApp.adminPassword, "the password is stored hashed")
            XCTAssertTrue(users.first?.passwordHash.hasPrefix("$2") ?? false)
        }
    }

    func testGeneratedAdministratorPasswordWorks() async throws {
        try await TestApp.run { app in
            let administration = app.users(actor: .system)
            try await User.query(on: app.db).delete()
            let created = try await administration.createInitialAdministrator(password: nil)
            let generated = try XCTUnwrap(created)
            XCTAssertGreaterThanOrEqual(generated.count, 16)
            let nothing = try await administration.createInitialAdministrator(password: nil)
            XCTAssertNil(nothing, "only the first start creates an administrator")
            let client = try TestClient(app)
            try await client.signIn("admin", generated)
        }
    }

    func testWebSignInSessionCookieAndSignOut() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            let dashboard = try await client.request(.GET, "/")
            XCTAssertEqual(dashboard.status, .seeOther)
            XCTAssertEqual(dashboard.headers.first(name: .location), "/login?next=/")

            let token = try await client.csrfToken()
            let signedIn = try await client.request(
                .POST, "/login",
                form: [
                    ("username", "admin"), ("password", TestApp.adminPassword), ("next", "/logs"), ("csrf", token),
                ])
            XCTAssertEqual(signedIn.status, .seeOther)
            XCTAssertEqual(signedIn.headers.first(name: .location), "/logs")
            let cookie = try XCTUnwrap(signedIn.headers[.setCookie].first { $0.hasPrefix("flotilla_session=") })
            XCTAssertTrue(cookie.contains("HttpOnly"))
            XCTAssertTrue(cookie.contains("SameSite=Lax"))
            XCTAssertFalse(cookie.contains("Secure"), "plain HTTP without a trusted proxy gets no Secure flag")

            let page = try await client.request(.GET, "/")
            XCTAssertEqual(page.status, .ok)
            XCTAssertTrue(page.body.string.contains("Service configuration"), "the layout carries the whole navigation")

            try await client.submit("/logout")
            let after = try await client.request(.GET, "/")
            XCTAssertEqual(after.status, .seeOther)
            let kinds = try await LogEntry.query(on: app.db).sort(\.$id).all().map { "\($0.kind) \($0.action) \($0.result)" }
            XCTAssertEqual(kinds, ["login login success", "login logout success"])
        }
    }

    func testSignInRotatesTheSessionID() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            try await client.signIn("admin", TestApp.adminPassword)
            let first = try XCTUnwrap(client.cookies["flotilla_session"])
            try await client.signIn("admin", TestApp.adminPassword)
            XCTAssertNotEqual(client.cookies["flotilla_session"], first)
            let planted = try TestClient(app)
            let response = try await planted.request(
                .POST, "/api/v1/login", json: API.Credentials(username: "admin", password: TestApp.adminPassword),
                headers: ["Cookie": "flotilla_session=planted-by-someone"])
            XCTAssertEqual(response.status, .ok)
            XCTAssertNotEqual(planted.cookies["flotilla_session"], "planted-by-someone", "a planted ID is never adopted")
        }
    }

    func testSecureCookieBehindTrustedHTTPSProxy() async throws {
        try await TestApp.run(["FLOTILLA_COOKIE_SECURE": "true"]) { app in
            let client = try TestClient(app)
            let response = try await client.request(
                .POST, "/api/v1/login", json: API.Credentials(username: "admin", password: TestApp.adminPassword))
            XCTAssertTrue(try XCTUnwrap(response.headers[.setCookie].first).contains("Secure"))
        }
    }

    func testWrongPasswordsAreRefusedLoggedAndThrottled() async throws {
        try await TestApp.run(["FLOTILLA_LOGIN_MAX_FAILURES": "3", "FLOTILLA_LOGIN_LOCKOUT_SECONDS": "2"]) { app in
            let client = try TestClient(app)
            for _ in 0..<3 {
                let response = try await client.request(
                    .POST, "/api/v1/login", json: API.Credentials(username: "admin", password: "wrong-password"))
                XCTAssertEqual(response.status, .unauthorized)
                XCTAssertEqual(response.errorCode, "unauthenticated")
            }
            let locked = try await client.request(
                .POST, "/api/v1/login", json: API.Credentials(username: "admin", password: TestApp.adminPassword))
            XCTAssertEqual(locked.status, .tooManyRequests, "even the right password waits out the lockout")
            XCTAssertEqual(locked.errorCode, "too_many_attempts")

            let entries = try await LogEntry.query(on: app.db).filter(\.$kind == "login").all()
            XCTAssertEqual(entries.filter { $0.result == "failure" }.count, 3)
            XCTAssertEqual(entries.filter { $0.result == "denied" }.count, 1)
            XCTAssertTrue(entries.allSatisfy { $0.operatorName == "admin" })

            try await Task.sleep(for: .seconds(2.2))
            try await client.signIn("admin", TestApp.adminPassword)
        }
    }

    func testUnknownUsersAreThrottledPerIPToo() async throws {
        try await TestApp.run(["FLOTILLA_LOGIN_MAX_FAILURES": "3"]) { app in
            let client = try TestClient(app)
            for index in 0..<9 {  // three times the limit (SignIn.namesPerAddress)
                let response = try await client.request(
                    .POST, "/api/v1/login", json: API.Credentials(username: "name\(index)", password: "x"))
                XCTAssertEqual(response.status, .unauthorized)
            }
            let next = try await client.request(.POST, "/api/v1/login", json: API.Credentials(username: "another", password: "x"))
            XCTAssertEqual(next.status, .tooManyRequests, "failures over many names from one address lock that address")
        }
    }

    func testWebSignInFailureShowsTheReason() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            let response = try await client.submit("/login", [("username", "admin"), ("password", "nope")])
            XCTAssertEqual(response.status, .unauthorized)
            XCTAssertTrue(response.body.string.contains("wrong user name or password"))
        }
    }

    func testFormsWithoutTheCSRFTokenAreRefused() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            try await client.signIn("admin", TestApp.adminPassword)
            let response = try await client.request(
                .POST, "/users",
                form: [
                    ("username", "mallory"), ("password", "password-123"), ("passwordConfirmation", "password-123"), ("role", "system"),
                ])
            XCTAssertEqual(response.status, .forbidden)
            XCTAssertTrue(response.body.string.contains("did not come from Flotilla"))
            let mallory = try await User.query(on: app.db).filter(\.$username == "mallory").count()
            XCTAssertEqual(mallory, 0)
        }
    }

    func testAPITokensAuthenticateAndCanBeRevoked() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            try await client.signIn("admin", TestApp.adminPassword)
            let created = try await client.request(.POST, "/api/v1/tokens", json: API.NewToken(name: "deploy"))
            XCTAssertEqual(created.status, .created)
            let token = try client.decode(API.TokenBody.self, created)
            let secret = try XCTUnwrap(token.token)
            XCTAssertTrue(secret.hasPrefix("flt_"))
            let stored = try await APIToken.query(on: app.db).all()
            XCTAssertEqual(stored.count, 1)
            XCTAssertNotEqual(stored.first?.tokenDigest, secret, "only a digest is stored")

            let listed = try await client.request(.GET, "/api/v1/tokens")
            XCTAssertFalse(listed.body.string.contains(secret), "the secret is shown once")

            let robot = try TestClient(app)
            robot.bearer = secret
            let users = try await robot.request(.GET, "/api/v1/users")
            XCTAssertEqual(users.status, .ok)
            let added = try await robot.request(
                .POST, "/api/v1/users",
                json: API.NewUser(
                    username: "robot-made", password: "password-123", passwordConfirmation: "password-123", role: "ordinary"))
            XCTAssertEqual(added.status, .created, "bearer requests need no CSRF token")

            client.sendsCSRFHeader = false
            let cookieOnly = try await client.request(.DELETE, "/api/v1/tokens/\(token.id)")
            XCTAssertEqual(cookieOnly.status, .forbidden, "with the cookie alone a state-changing API call is refused")
            XCTAssertEqual(cookieOnly.errorCode, "csrf")
            client.sendsCSRFHeader = true
            let revoked = try await client.request(.DELETE, "/api/v1/tokens/\(token.id)")
            XCTAssertEqual(revoked.status, .noContent)
            let refused = try await robot.request(.GET, "/api/v1/users")
            XCTAssertEqual(refused.status, .unauthorized)
            robot.bearer = "flt_forged"
            let forged = try await robot.request(.GET, "/api/v1/users")
            XCTAssertEqual(forged.status, .unauthorized)
        }
    }

    func testOperatorIPHonoursForwardedForOnlyFromTrustedProxies() async throws {
        for (trusted, expected) in [("", "127.0.0.1"), ("127.0.0.1/32", "203.0.113.9")] {
            let port = Int.random(in: 20000...60000)
            try await TestApp.run(["FLOTILLA_TRUSTED_PROXIES": trusted]) { app in
                let client = try TestClient(app, tester: app.testable(method: .running(hostname: "127.0.0.1", port: port)))
                client.forwardedFor = "198.51.100.7, 203.0.113.9"
                try await client.request(.POST, "/api/v1/login", json: API.Credentials(username: "admin", password: "wrong"))
                let entry = try await LogEntry.query(on: app.db).filter(\.$result == "failure").first()
                XCTAssertEqual(entry?.operatorIP, expected, "trusted proxies: '\(trusted)'")
            }
        }
    }
}
