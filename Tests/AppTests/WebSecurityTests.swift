import Crypto
import Fluent
import SQLKit
import XCTVapor

@testable import App

/// Review findings 2-7 and 12-14 (security review 2026-12) and issue 8 §5: each test failed
/// before its fix.
final class WebSecurityTests: XCTestCase {
    private struct NewTokenInput: Content {
        var name: String
        var expiresInDays: Int?
    }

    private struct TokenAnswer: Decodable {
        var id: UUID
        var token: String?
        var expiresAt: Date?
    }

    private func sql(_ app: Application) throws -> any SQLDatabase {
        try XCTUnwrap(app.db as? any SQLDatabase)
    }

    private func sessionRows(_ app: Application) async throws -> Int {
        try await sql(app).select().column(SQLFunction("count", args: SQLLiteral.all), as: "n")
            .from("browser_sessions").first(decoding: Count.self)?.n ?? -1
    }

    private struct Count: Decodable { var n: Int }

    private func newUser() -> API.NewUser {
        API.NewUser(username: "mallory", password: "Mallory-pass-1", passwordConfirmation: "Mallory-pass-1", role: "system")
    }

    // MARK: CSRF on the API (finding 2)

    func testCookieAuthenticatedAPIWritesNeedTheCSRFHeader() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            try await client.signIn("admin", TestApp.adminPassword)
            XCTAssertNotNil(client.csrfHeader, "the API sign-in answer carries the session's CSRF token")
            client.sendsCSRFHeader = false

            let forged = try await client.request(.POST, "/api/v1/users", json: newUser())
            XCTAssertEqual(forged.status, .forbidden)
            XCTAssertEqual(forged.errorCode, "csrf")
            let form = try await client.request(
                .POST, "/api/v1/users",
                form: [
                    ("username", "mallory"), ("password", "Mallory-pass-1"), ("passwordConfirmation", "Mallory-pass-1"), ("role", "system"),
                ])
            XCTAssertEqual(form.status, .forbidden, "a plain HTML form reaches no API route with the cookie")
            let wrong = try await client.request(.POST, "/api/v1/users", json: newUser(), headers: ["X-CSRF-Token": "guessed"])
            XCTAssertEqual(wrong.status, .forbidden)
            let mallory = try await User.query(on: app.db).filter(\.$username == "mallory").count()
            XCTAssertEqual(mallory, 0)
            let refusals = try await LogEntry.query(on: app.db).filter(\.$action == "csrf").filter(\.$result == "denied").count()
            XCTAssertEqual(refusals, 3, "each refusal is audited")

            client.sendsCSRFHeader = true
            let allowed = try await client.request(.POST, "/api/v1/users", json: newUser())
            XCTAssertEqual(allowed.status, .created)
            let read = try await client.request(.GET, "/api/v1/users", headers: [:])
            XCTAssertEqual(read.status, .ok, "reading needs no token")
        }
    }

    func testAPISignInAcceptsOnlyJSON() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            let form = try await client.request(.POST, "/api/v1/login", form: [("username", "admin"), ("password", TestApp.adminPassword)])
            XCTAssertEqual(form.status, .unsupportedMediaType, "a cross-site form cannot sign a browser in")
            XCTAssertNil(client.cookies[SessionCookie.name])
            let crossSite = try await client.request(
                .POST, "/api/v1/login",
                json: API.Credentials(username: "admin", password: TestApp.adminPassword),
                headers: ["Sec-Fetch-Site": "same-site"])
            XCTAssertEqual(crossSite.status, .forbidden, "the browser says the request came from another site")
            XCTAssertNil(client.cookies[SessionCookie.name])
            try await client.signIn("admin", TestApp.adminPassword)
        }
    }

    func testPagesRefuseFramingAndSniffing() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            for path in ["/login", "/api/v1/openapi.json", "/no-such-page", "/css/flotilla.css"] {
                let response = try await client.request(.GET, path)
                XCTAssertEqual(response.headers.first(name: "X-Frame-Options"), "DENY", path)
                XCTAssertTrue(response.headers.first(name: "Content-Security-Policy")?.contains("frame-ancestors 'none'") ?? false, path)
                XCTAssertEqual(response.headers.first(name: "X-Content-Type-Options"), "nosniff", path)
            }
        }
    }

    func testPagesCarryTheCSRFTokenForTheirScripts() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            try await client.signIn("admin", TestApp.adminPassword)
            let page = try await client.request(.GET, "/users")
            let token = try XCTUnwrap(client.csrfHeader)
            XCTAssertTrue(page.body.string.contains(#"<meta name="csrf-token" content="\#(token)">"#))
            let script = try await client.request(.GET, "/js/flotilla.js")
            XCTAssertTrue(script.body.string.contains("X-CSRF-Token"))
        }
    }

    // MARK: Sign-in throttle (findings 3, 6, 14)

    func testParallelWrongPasswordsAreCountedBeforeTheyAreChecked() async throws {
        try await TestApp.run(["FLOTILLA_LOGIN_MAX_FAILURES": "5"], beforeBoot: { $0.passwords.use(.bcrypt(cost: 8)) }) { app in
            let statuses = try await withThrowingTaskGroup(of: HTTPStatus.self) { group in
                for attempt in 0..<20 {
                    group.addTask {
                        let client = try TestClient(app)
                        return try await client.request(
                            .POST, "/api/v1/login",
                            json: API.Credentials(username: "admin", password: "wrong-\(attempt)")
                        ).status
                    }
                }
                return try await group.reduce(into: [HTTPStatus]()) { $0.append($1) }
            }
            XCTAssertLessThanOrEqual(statuses.filter { $0 == .unauthorized }.count, 5, "\(statuses)")
            XCTAssertEqual(statuses.filter { $0 == .tooManyRequests }.count + statuses.filter { $0 == .unauthorized }.count, 20)
        }
    }

    func testAnAttackerElsewhereCannotLockTheUserOut() async throws {
        let port = Int.random(in: 20000...60000)
        try await TestApp.run(["FLOTILLA_LOGIN_MAX_FAILURES": "3", "FLOTILLA_TRUSTED_PROXIES": "127.0.0.1/32"]) { app in
            let tester = try app.testable(method: .running(hostname: "127.0.0.1", port: port))
            let attacker = try TestClient(app, tester: tester)
            attacker.forwardedFor = "203.0.113.66"
            for attempt in 0..<5 {
                try await attacker.request(.POST, "/api/v1/login", json: API.Credentials(username: "admin", password: "guess-\(attempt)"))
            }
            let locked = try await attacker.request(
                .POST, "/api/v1/login", json: API.Credentials(username: "admin", password: TestApp.adminPassword))
            XCTAssertEqual(locked.status, .tooManyRequests, "the attacker's address is locked")
            let owner = try TestClient(app, tester: tester)
            owner.forwardedFor = "198.51.100.7"
            try await owner.signIn("admin", TestApp.adminPassword)
        }
    }

    func testUnknownSignInNamesAreNotShownInTheLog() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            try await client.request(.POST, "/api/v1/login", json: API.Credentials(username: "Tr0ub4dor&3", password: "x"))
            try await client.request(.POST, "/api/v1/login", json: API.Credentials(username: "admin", password: "wrong"))
            let entries = try await LogEntry.query(on: app.db).filter(\.$kind == "login").sort(\.$id).all()
            XCTAssertEqual(entries.map { $0.operatorName ?? "-" }, ["unknown user", "admin"])
            XCTAssertFalse(entries.contains { $0.details.contains("Tr0ub4dor") })
            let stored = try await LoginFailure.query(on: app.db).all()
            XCTAssertFalse(stored.contains { $0.username.contains("Tr0ub4dor") }, "the typed name is kept only as a digest")
        }
    }

    // MARK: next (finding 4)

    func testSignInGoesOnlyToLocalPaths() async throws {
        try await TestApp.run { app in
            let cases: [(String, String)] = [
                ("/logs", "/logs"), ("/environments?page=2", "/environments?page=2"), ("", "/"),
                ("//evil.example/", "/"), ("/\\evil.example/", "/"), ("http://evil.example/", "/"), ("evil", "/"),
                ("/\r\nX-Injected: yes", "/"), ("/ok\u{7F}", "/"), ("/a\\b", "/"), ("/\tx", "/"),
            ]
            for (next, expected) in cases {
                let client = try TestClient(app)
                let response = try await client.submit(
                    "/login", [("username", "admin"), ("password", TestApp.adminPassword), ("next", next)])
                XCTAssertEqual(response.status, .seeOther, next)
                XCTAssertEqual(response.headers.first(name: .location), expected, next.debugDescription)
                XCTAssertNil(response.headers.first(name: "X-Injected"))
            }
        }
    }

    // MARK: Sessions and tokens after a password change (finding 5)

    func testAPasswordResetEndsTheUsersSessions() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            try await createUser(admin, "op", role: .ordinary)
            let first = try TestClient(app)
            let second = try TestClient(app)
            try await first.signIn("op", "password-123")
            try await second.signIn("op", "password-123")

            let change = try await first.request(
                .POST, "/api/v1/users/me/password",
                json: API.PasswordChange(
                    currentPassword: "password-123", password: "password-456", passwordConfirmation: "password-456"))
            XCTAssertEqual(change.status, .ok)
            let changer = try await first.request(.GET, "/api/v1/users").status
            XCTAssertEqual(changer, .ok, "the session that changed it stays")
            let otherSession = try await second.request(.GET, "/api/v1/users").status
            XCTAssertEqual(otherSession, .unauthorized, "other sessions end")

            let opRecord = try await User.query(on: app.db).filter(\.$username == "op").first()
            let op = try XCTUnwrap(opRecord)
            let reset = try await admin.request(
                .PATCH, "/api/v1/users/\(try op.requireID())",
                json: API.UserChanges(password: "password-789", passwordConfirmation: "password-789"))
            XCTAssertEqual(reset.status, .ok)
            let afterReset = try await first.request(.GET, "/api/v1/users").status
            XCTAssertEqual(afterReset, .unauthorized, "a reset ends every session")
            let adminAfterReset = try await admin.request(.GET, "/api/v1/users").status
            XCTAssertEqual(adminAfterReset, .ok)
        }
    }

    func testTokensCanExpire() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            try await client.signIn("admin", TestApp.adminPassword)
            let bad = try await client.request(.POST, "/api/v1/tokens", json: NewTokenInput(name: "ci", expiresInDays: 0))
            XCTAssertEqual(bad.status, .badRequest)
            let created = try await client.request(.POST, "/api/v1/tokens", json: NewTokenInput(name: "ci", expiresInDays: 30))
            XCTAssertEqual(created.status, .created)
            let token = try client.decode(TokenAnswer.self, created)
            let expiresAt = try XCTUnwrap(token.expiresAt)
            XCTAssertEqual(expiresAt.timeIntervalSinceNow, 30 * 86_400, accuracy: 60)

            let robot = try TestClient(app)
            robot.bearer = token.token
            let beforeExpiry = try await robot.request(.GET, "/api/v1/users").status
            XCTAssertEqual(beforeExpiry, .ok)
            try await sql(app).update("api_tokens").set("expires_at", to: Date().addingTimeInterval(-1))
                .where("id", .equal, token.id).run()
            app.authenticationVerdicts.forgetAll()  // as `AuthenticationVerdicts.lifetime` passing would
            let expired = try await robot.request(.GET, "/api/v1/users")
            XCTAssertEqual(expired.status, .unauthorized)
            XCTAssertTrue(expired.body.string.contains("expired"))
        }
    }

    func testSystemAdministratorsListAndRevokeAnyUsersTokens() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            try await createUser(admin, "op", role: .ordinary)
            let op = try TestClient(app)
            try await op.signIn("op", "password-123")
            let created = try op.decode(
                TokenAnswer.self, try await op.request(.POST, "/api/v1/tokens", json: NewTokenInput(name: "laptop")))
            let opRecordID = try await User.query(on: app.db).filter(\.$username == "op").first()?.requireID()
            let opID = try XCTUnwrap(opRecordID)
            let adminRecordID = try await User.query(on: app.db).filter(\.$username == "admin").first()?.requireID()
            let adminID = try XCTUnwrap(adminRecordID)

            let ordinaryLooks = try await op.request(.GET, "/api/v1/users/\(adminID)/tokens").status
            XCTAssertEqual(ordinaryLooks, .forbidden)
            let listed = try await admin.request(.GET, "/api/v1/users/\(opID)/tokens")
            XCTAssertEqual(listed.status, .ok)
            XCTAssertTrue(listed.body.string.contains("laptop"))
            XCTAssertFalse(listed.body.string.contains(try XCTUnwrap(created.token)))
            let page = try await admin.request(.GET, "/users/\(opID)/edit")
            XCTAssertTrue(page.body.string.contains("laptop"), "the user's edit page lists the tokens")

            let robot = try TestClient(app)
            robot.bearer = created.token
            let beforeRevoke = try await robot.request(.GET, "/api/v1/users").status
            XCTAssertEqual(beforeRevoke, .ok)
            let wrongOwner = try await admin.request(.DELETE, "/api/v1/users/\(adminID)/tokens/\(created.id)").status
            XCTAssertEqual(
                wrongOwner, .notFound,
                "the token belongs to the user named in the path")
            let revoked = try await admin.request(.DELETE, "/api/v1/users/\(opID)/tokens/\(created.id)").status
            XCTAssertEqual(revoked, .noContent)
            let afterRevoke = try await robot.request(.GET, "/api/v1/users").status
            XCTAssertEqual(afterRevoke, .unauthorized)
            let entry = try await LogEntry.query(on: app.db).filter(\.$action == "token.revoke").first()
            XCTAssertEqual(entry?.operatorName, "admin")
            XCTAssertTrue(entry?.details.contains("'op'") ?? false)
        }
    }

    func testWebRevokeOfAnotherUsersToken() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            try await createUser(admin, "op", role: .ordinary)
            let op = try TestClient(app)
            try await op.signIn("op", "password-123")
            let created = try op.decode(
                TokenAnswer.self, try await op.request(.POST, "/api/v1/tokens", json: NewTokenInput(name: "laptop")))
            let opRecordID = try await User.query(on: app.db).filter(\.$username == "op").first()?.requireID()
            let opID = try XCTUnwrap(opRecordID)
            let revoked = try await admin.submit("/users/\(opID)/tokens/\(created.id)/revoke")
            XCTAssertEqual(revoked.status, .seeOther)
            XCTAssertEqual(revoked.headers.first(name: .location), "/users/\(opID)/edit")
            let left = try await APIToken.query(on: app.db).count()
            XCTAssertEqual(left, 0)
        }
    }

    // MARK: Sessions (findings 7, 13; issue §5)

    func testAnonymousRequestsCreateNoSessionRows() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            for path in ["/login", "/no-such-page", "/", "/api/v1/users", "/login?next=/logs"] {
                try await client.request(.GET, path)
            }
            try await TestClient(app).request(.GET, "/login", headers: ["Cookie": "\(SessionCookie.name)=made-up"])
            let anonymousRows = try await sessionRows(app)
            XCTAssertEqual(anonymousRows, 0)
            XCTAssertNil(client.cookies[SessionCookie.name])
            try await client.submit("/login", [("username", "admin"), ("password", TestApp.adminPassword)])
            let signedInRows = try await sessionRows(app)
            XCTAssertEqual(signedInRows, 1, "signing in with the anonymous form's token starts the one session")
        }
    }

    func testSessionIDsAreStoredHashedAndReadsDoNotWriteThem() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            try await client.signIn("admin", TestApp.adminPassword)
            let id = try XCTUnwrap(client.cookies[SessionCookie.name])
            struct Row: Decodable {
                var key_digest: String
                var data: String
            }
            let rows = try await sql(app).select().columns("key_digest", "data").from("browser_sessions").all(decoding: Row.self)
            XCTAssertEqual(rows.map(\.key_digest), [SHA256.hash(data: Data(id.utf8)).hex])
            XCTAssertFalse(rows.contains { $0.data.contains(id) })

            let marker = Date(timeIntervalSince1970: 1_000_000_000)
            try await sql(app).update("browser_sessions").set("updated_at", to: marker).run()
            for path in ["/", "/users", "/api/v1/users", "/account"] {
                let read = try await client.request(.GET, path).status
                XCTAssertEqual(read, .ok, path)
            }
            struct Updated: Decodable { var updated_at: Date }
            let after = try await sql(app).select().column("updated_at").from("browser_sessions").first(decoding: Updated.self)
            XCTAssertEqual(after?.updated_at, marker, "requests that read write no session row")
        }
    }

    func testExpiredSessionsEndAndArePurged() async throws {
        try await TestApp.run { app in
            let old = try TestClient(app)
            try await old.signIn("admin", TestApp.adminPassword)
            try await sql(app).update("browser_sessions").set("expires_at", to: Date().addingTimeInterval(-1)).run()
            let expired = try await old.request(.GET, "/api/v1/users").status
            XCTAssertEqual(expired, .unauthorized)
            let fresh = try TestClient(app)
            try await fresh.signIn("admin", TestApp.adminPassword)
            let rowsAfterPurge = try await sessionRows(app)
            XCTAssertEqual(rowsAfterPurge, 1, "signing in purges expired sessions")
        }
    }

    // MARK: Files and SQLite (finding 13; issue §5)

    func testDataDirectoryAndDatabaseArePrivate() async throws {
        try XCTSkipIf(TestApp.postgresURL != nil, "SQLite only")
        try await TestApp.run { app in
            let config = app.flotilla.config
            let directory = try FileManager.default.attributesOfItem(atPath: config.dataDirectory)[.posixPermissions] as? Int
            XCTAssertEqual(directory, 0o700)
            guard case .sqlite(let path) = config.database else { return XCTFail("expected SQLite") }
            let file = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            XCTAssertEqual(file, 0o600)
        }
    }

    func testSQLiteRunsInWALModeWithABusyTimeout() async throws {
        try XCTSkipIf(TestApp.postgresURL != nil, "SQLite only")
        try await TestApp.run { app in
            struct Mode: Decodable { var journal_mode: String }
            struct Timeout: Decodable { var timeout: Int }
            let mode = try await sql(app).raw("PRAGMA journal_mode").first(decoding: Mode.self)
            XCTAssertEqual(mode?.journal_mode, "wal")
            for _ in 0..<4 {
                let timeout = try await sql(app).raw("PRAGMA busy_timeout").first(decoding: Timeout.self)
                XCTAssertEqual(timeout?.timeout, 5000)
            }
        }
    }

    // MARK: Tokens' last use (issue §5)

    func testTokenLastUseIsWrittenAtMostOnceAMinute() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            try await client.signIn("admin", TestApp.adminPassword)
            let token = try client.decode(
                TokenAnswer.self, try await client.request(.POST, "/api/v1/tokens", json: NewTokenInput(name: "ci")))
            let robot = try TestClient(app)
            robot.bearer = token.token
            struct Used: Decodable { var last_used_at: Date? }
            func lastUsed() async throws -> Date? {
                let row = try await sql(app).select().column("last_used_at").from("api_tokens").first(decoding: Used.self)
                return row?.last_used_at
            }
            try await robot.request(.GET, "/api/v1/users")
            let firstUse = try await lastUsed()
            XCTAssertNotNil(firstUse, "the first use is recorded")
            let recent = Date().addingTimeInterval(-30).timeIntervalSince1970.rounded()
            try await sql(app).update("api_tokens").set("last_used_at", to: Date(timeIntervalSince1970: recent)).run()
            app.authenticationVerdicts.forgetAll()  // as `AuthenticationVerdicts.lifetime` passing would
            try await robot.request(.GET, "/api/v1/users")
            let withinAMinute = try await lastUsed()?.timeIntervalSince1970
            XCTAssertEqual(withinAMinute, recent, "within a minute nothing is written")
            try await sql(app).update("api_tokens").set("last_used_at", to: Date().addingTimeInterval(-61)).run()
            app.authenticationVerdicts.forgetAll()
            try await robot.request(.GET, "/api/v1/users")
            let afterAMinute = try await lastUsed()
            XCTAssertEqual(try XCTUnwrap(afterAMinute).timeIntervalSinceNow, 0, accuracy: 5)
        }
    }
}
