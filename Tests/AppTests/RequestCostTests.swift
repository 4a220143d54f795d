import Fluent
import Logging
import SQLKit
import XCTVapor

@testable import App

/// What a reading request costs the database (issue 8 §5): the statements it runs, counted from
/// the SQL log, and that it writes nothing. Throughput itself is measured by
/// `scripts/bench-requests`, never here.
final class RequestCostTests: XCTestCase {
    func testReadingRequestsRunFewStatementsAndWriteNothing() async throws {
        try await InMemoryWorld.run { world in
            let log = StatementLog()
            world.app.logger = Logger(label: "statements") { _ in log.handler }
            let robot = try TestClient(world.app)
            robot.bearer = try await world.newToken()
            // The token's first use records it (at most once a minute); later reads write nothing.
            let firstUse = try await robot.request(.GET, "/api/v1/environments")
            XCTAssertEqual(firstUse.status, .ok)

            for (client, kind) in [(robot, "token"), (world.admin, "cookie")] {
                let list = try await log.statements(of: client, "/api/v1/environments?per=100").filter { !$0.isSignIn }
                XCTAssertEqual(list.count, 1, "\(kind): the page with its VM counts\n\(list.joined(separator: "\n"))")
                let pastTheEnd = try await log.statements(of: client, "/api/v1/environments?page=5").filter { !$0.isSignIn }
                XCTAssertEqual(pastTheEnd.count, 2, "\(kind): a page past the end also counts\n\(pastTheEnd.joined(separator: "\n"))")
                for path in [
                    "/api/v1/environments?per=100", "/api/v1/users", "/api/v1/environments/\(world.environmentID)", "/environments",
                ] {
                    let statements = try await log.statements(of: client, path)
                    let authentication = statements.filter(\.isSignIn)
                    XCTAssertLessThanOrEqual(
                        authentication.count, 1,
                        "\(kind) \(path): at most one statement signs the user in\n\(statements.joined(separator: "\n"))")
                    let writes = statements.filter { ["INSERT", "UPDATE", "DELETE"].contains($0.prefix(6).uppercased()) }
                    XCTAssertEqual(writes, [], "\(kind) \(path) only reads")
                }
            }
        }
    }

    /// The hot lists (issue 8 §5, issue 10's page benchmark) run one statement beside the
    /// sign-in (itself at most one), whatever the page and filter; only a page past the end
    /// reads the total apart.
    func testHotListsRunOneStatementBesideTheSignIn() async throws {
        try await InMemoryWorld.run { world in
            let log = StatementLog()
            world.app.logger = Logger(label: "statements") { _ in log.handler }
            try await world.addReadyVM("web-01", "10.77.5.9")
            try await world.addReadyVM("redis-01", "10.77.5.100", role: "redis")
            let robot = try TestClient(world.app)
            robot.bearer = try await world.newToken()
            _ = try await robot.request(.GET, "/api/v1/users")  // the token's first use is recorded

            let environmentFilter = "environment=\(world.environmentID)"
            for (client, kind) in [(robot, "token"), (world.admin, "cookie")] {
                for path in [
                    "/api/v1/users", "/api/v1/users?q=adm&per=100", "/api/v1/vms?per=100", "/api/v1/vms?role=web&q=w1",
                    "/api/v1/vms?\(environmentFilter)", "/api/v1/dashboard", "/?per=100", "/?role=redis&q=re",
                ] {
                    let statements = try await log.statements(of: client, path).filter { !$0.isSignIn }
                    let reads = path == "/api/v1/dashboard" ? 0 : 1
                    XCTAssertEqual(statements.count, reads, "\(kind) \(path): the list\n\(statements.joined(separator: "\n"))")
                    let replayed = try await log.statements(of: client, path, replayed: true)
                    XCTAssertEqual(replayed, [], "\(kind) \(path): a kept answer runs no statement, not even to sign in")
                }
                let pastTheEnd = try await log.statements(of: client, "/api/v1/vms?page=9").filter { !$0.isSignIn }
                XCTAssertEqual(pastTheEnd.count, 2, "\(kind): a page past the end also counts\n\(pastTheEnd.joined(separator: "\n"))")
            }
        }
    }

    /// Requests that arrive together for an answer no longer kept (its second is over, or a
    /// change forgot it) wait for one of them to build it rather than each building it.
    func testSimultaneousReadsBuildAnAnswerOnce() async throws {
        try await InMemoryWorld.run { world in
            let log = StatementLog()
            world.app.logger = Logger(label: "statements") { _ in log.handler }
            try await world.addReadyVM("web-01", "10.77.5.9")
            let path = "/api/v1/vms?per=100"
            _ = try await log.statements(of: world.admin, path)  // the session's verdict is kept
            let before = log.count
            world.app.keptAnswers.forgetAll()
            let app = world.app
            let headers: HTTPHeaders = ["Cookie": "\(SessionCookie.name)=\(try XCTUnwrap(world.admin.cookies[SessionCookie.name]))"]
            let statuses = try await withThrowingTaskGroup(of: HTTPStatus.self) { group in
                for _ in 1...20 {
                    group.addTask {
                        try await app.testable().performTest(
                            request: TestingHTTPRequest(method: .GET, url: URI(string: path), headers: headers, body: ByteBuffer())
                        ).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            XCTAssertEqual(statuses, Array(repeating: .ok, count: 20))
            // One build; a second only if a background change forgot the first one meanwhile.
            XCTAssertLessThanOrEqual(log.count - before, 2, "20 reads built the list \(log.count - before) times")
        }
    }

    func testTheUserAndVMListsPageFilterAndTotal() async throws {
        try await InMemoryWorld.run { world in
            for name in ["carol", "bob", "dave_x"] {
                try await createUser(world.admin, name, role: .ordinary)
            }
            try await world.addReadyVM("web-01", "10.77.5.9")
            try await world.addReadyVM("web-02", "10.77.5.10")
            try await world.addReadyVM("redis-01", "10.77.5.100", role: "redis")

            let users = try world.admin.decode(
                ListResponse<API.UserBody>.self, try await world.admin.request(.GET, "/api/v1/users?per=10&page=1"))
            XCTAssertEqual(users.items.map(\.username), ["admin", "bob", "carol", "dave_x"])
            XCTAssertEqual(users.total, 4)
            XCTAssertEqual(users.items.first?.role, .system)
            XCTAssertNotNil(users.items.first?.lastSignInAt)
            let found = try world.admin.decode(
                ListResponse<API.UserBody>.self, try await world.admin.request(.GET, "/api/v1/users?q=_X"))
            XCTAssertEqual(found.items.map(\.username), ["dave_x"], "the underscore matches itself only")
            XCTAssertEqual(found.total, 1)
            let beyondUsers = try world.admin.decode(
                ListResponse<API.UserBody>.self, try await world.admin.request(.GET, "/api/v1/users?page=2&q=a"))
            XCTAssertEqual(beyondUsers.items.count, 0)
            XCTAssertEqual(beyondUsers.total, 3, "a page past the end still reports the filtered total")

            let vms = try world.admin.decode(
                ListResponse<VMListing>.self, try await world.admin.request(.GET, "/api/v1/vms?per=10"))
            XCTAssertEqual(vms.items.map(\.hostName), ["redis-01", "web-01", "web-02"])
            XCTAssertEqual(vms.items.map(\.role), ["redis", "web", "web"])
            XCTAssertEqual(vms.items.map(\.environment), ["staging", "staging", "staging"])
            XCTAssertEqual(vms.total, 3)
            let web = try world.admin.decode(
                ListResponse<VMListing>.self, try await world.admin.request(.GET, "/api/v1/vms?role=web&q=w2"))
            XCTAssertEqual(web.items.map(\.hostName), ["web-02"])
            XCTAssertEqual(web.total, 1)
            let beyondVMs = try world.admin.decode(
                ListResponse<VMListing>.self, try await world.admin.request(.GET, "/api/v1/vms?page=2&role=web"))
            XCTAssertEqual(beyondVMs.items.count, 0)
            XCTAssertEqual(beyondVMs.total, 2, "a page past the end still reports the filtered total")
        }
    }

    func testTheEnvironmentListCountsVMsAndTotals() async throws {
        try await InMemoryWorld.run { world in
            for index in 1...11 {
                let added = try await world.admin.request(
                    .POST, "/api/v1/environments",
                    json: API.EnvironmentInput(name: String(format: "env-%02d", index), description: "n\(index)"))
                XCTAssertEqual(added.status, .created, added.body.string)
            }
            try await world.addReadyVM("web-01", "10.77.5.9")
            try await world.addReadyVM("redis-01", "10.77.5.100", role: "redis")

            let first = try world.admin.decode(
                ListResponse<Environments.Row>.self, try await world.admin.request(.GET, "/api/v1/environments?per=10"))
            XCTAssertEqual(first.total, 12)
            XCTAssertEqual(first.items.map(\.name), (1...10).map { String(format: "env-%02d", $0) })
            XCTAssertEqual(first.items.map(\.description), (1...10).map { "n\($0)" })
            XCTAssertEqual(first.items.map(\.vmCount), Array(repeating: 0, count: 10))

            let second = try world.admin.decode(
                ListResponse<Environments.Row>.self, try await world.admin.request(.GET, "/api/v1/environments?per=10&page=2"))
            XCTAssertEqual(second.total, 12)
            XCTAssertEqual(second.items.map(\.name), ["env-11", "staging"])
            XCTAssertEqual(second.items.map(\.vmCount), [0, 2])
            XCTAssertEqual(second.items.last?.id, world.environmentID)

            let beyond = try world.admin.decode(
                ListResponse<Environments.Row>.self, try await world.admin.request(.GET, "/api/v1/environments?per=10&page=3"))
            XCTAssertEqual(beyond.items.count, 0)
            XCTAssertEqual(beyond.total, 12, "a page past the end still reports the total")
        }
    }

    /// A demotion, a revoked token and a deleted user count on the very next request, for the
    /// cookie and the token alike, although reading requests keep their sign-in verdicts.
    func testAuthenticationChangesCountOnTheNextRequest() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            try await createUser(admin, "ops", role: .system)
            let ops = try await User.query(on: app.db).filter(\.$username == "ops").first()
            let opsID = try XCTUnwrap(ops?.id)
            let browser = try TestClient(app)
            try await browser.signIn("ops", "password-123")
            let robot = try TestClient(app)
            let created = try await browser.request(.POST, "/api/v1/tokens", json: API.NewToken(name: "ci"))
            robot.bearer = try XCTUnwrap(try browser.decode(API.TokenBody.self, created).token)
            let systemOnly = "/api/v1/users/\(opsID)/tokens"
            for client in [browser, robot] {
                let allowed = try await client.request(.GET, systemOnly)
                XCTAssertEqual(allowed.status, .ok)
            }

            let demoted = try await admin.request(.PATCH, "/api/v1/users/\(opsID)", json: API.UserChanges(role: "ordinary"))
            XCTAssertEqual(demoted.status, .ok, demoted.body.string)
            for client in [browser, robot] {
                let refused = try await client.request(.GET, systemOnly)
                XCTAssertEqual(refused.status, .forbidden)
                let stillReads = try await client.request(.GET, "/api/v1/environments")
                XCTAssertEqual(stillReads.status, .ok)
            }

            let deleted = try await admin.request(.DELETE, "/api/v1/users/\(opsID)")
            XCTAssertEqual(deleted.status, .noContent)
            for client in [browser, robot] {
                let gone = try await client.request(.GET, "/api/v1/environments")
                XCTAssertEqual(gone.status, .unauthorized)
            }
        }
    }
}

extension RequestCostTests {
    /// Reading requests keep their sign-in verdicts and run no statement for them, and yet a
    /// change on this instance counts on the next request: a model written outside any request
    /// (as a job or command does), a password reset ending the user's sessions, a revoked token,
    /// a sign-out. A change this instance cannot see (another instance or the command line
    /// writing the database) counts within `AuthenticationVerdicts.lifetime`.
    func testKeptSignInVerdictsAreForgottenWhenTheyChange() async throws {
        try await TestApp.run { app in
            let log = StatementLog()
            app.logger = Logger(label: "statements") { _ in log.handler }
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            try await createUser(admin, "ops", role: .system)
            let found = try await User.query(on: app.db).filter(\.$username == "ops").first()
            let ops = try XCTUnwrap(found)
            let opsID = try XCTUnwrap(ops.id)
            let browser = try TestClient(app)
            try await browser.signIn("ops", "password-123")
            let robot = try TestClient(app)
            let created = try browser.decode(
                API.TokenBody.self, try await browser.request(.POST, "/api/v1/tokens", json: API.NewToken(name: "ci")))
            robot.bearer = try XCTUnwrap(created.token)
            let systemOnly = "/api/v1/users/\(opsID)/tokens"
            for client in [browser, robot] {
                _ = try await log.statements(of: client, systemOnly)
                let kept = try await log.statements(of: client, systemOnly)
                XCTAssertEqual(kept.filter(\.isSignIn), [], "a kept verdict needs no statement")
            }

            ops.role = .ordinary
            try await ops.save(on: app.db)
            for client in [browser, robot] {
                let refused = try await client.request(.GET, systemOnly)
                XCTAssertEqual(refused.status, .forbidden, "the demotion counts at once")
            }

            let reset = try await admin.request(
                .PATCH, "/api/v1/users/\(opsID)", json: API.UserChanges(password: "password-456", passwordConfirmation: "password-456"))
            XCTAssertEqual(reset.status, .ok, reset.body.string)
            let ended = try await browser.request(.GET, "/api/v1/environments")
            XCTAssertEqual(ended.status, .unauthorized, "a password reset ends the user's sessions at once")

            let revoked = try await admin.request(.DELETE, "/api/v1/users/\(opsID)/tokens/\(created.id)")
            XCTAssertEqual(revoked.status, .noContent, revoked.body.string)
            let gone = try await robot.request(.GET, "/api/v1/environments")
            XCTAssertEqual(gone.status, .unauthorized, "a revoked token stops at once")

            let other = try TestClient(app)
            try await other.signIn("admin", TestApp.adminPassword)
            _ = try await log.statements(of: other, "/api/v1/environments")
            let copied: HTTPHeaders = [
                "Cookie": "\(SessionCookie.name)=\(try XCTUnwrap(other.cookies[SessionCookie.name]))"
            ]
            let signedOut = try await other.request(.POST, "/api/v1/logout")
            XCTAssertEqual(signedOut.status, .ok, signedOut.body.string)
            let afterSignOut = try await TestClient(app).request(.GET, "/api/v1/environments", headers: copied)
            XCTAssertEqual(afterSignOut.status, .unauthorized, "a copy of a signed-out session's cookie stops at once")

            _ = try await log.statements(of: admin, "/api/v1/environments")
            let sql = try XCTUnwrap(app.db as? any SQLDatabase)
            try await sql.raw("DELETE FROM browser_sessions").run()  // as another instance would
            try await Task.sleep(for: .seconds(AuthenticationVerdicts.lifetime + 0.2))
            let elsewhere = try await admin.request(.GET, "/api/v1/environments")
            XCTAssertEqual(elsewhere.status, .unauthorized, "a change made elsewhere counts within the verdicts' lifetime")
        }
    }
}

extension String {
    /// Whether this logged statement is one that signs a request in.
    fileprivate var isSignIn: Bool { contains("t.token_digest") || contains("s.key_digest") }
}

extension InMemoryWorld {
    /// A personal API token of the signed-in administrator.
    func newToken() async throws -> String {
        let created = try await admin.request(.POST, "/api/v1/tokens", json: API.NewToken(name: "reader"))
        return try XCTUnwrap(try admin.decode(API.TokenBody.self, created).token)
    }
}
