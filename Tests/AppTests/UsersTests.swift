import ConsoleKit
import Fluent
import XCTVapor

@testable import App

final class UsersTests: XCTestCase {
    private func usernames(_ app: Application) async throws -> [String] {
        try await User.query(on: app.db).sort(\.$username).all().map(\.username)
    }

    func testAddEditDeleteThroughTheAPI() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            try await createUser(admin, "olga", role: .ordinary)
            let list = try admin.decode(ListResponse<API.UserBody>.self, try await admin.request(.GET, "/api/v1/users?per=10"))
            XCTAssertEqual(list.total, 2)
            XCTAssertEqual(list.items.map(\.username), ["admin", "olga"])
            let listed = try await admin.request(.GET, "/api/v1/users")
            XCTAssertFalse(listed.body.string.contains("password"), "no hash is ever answered")
            let olga = try XCTUnwrap(list.items.last)

            let promoted = try await admin.request(.PATCH, "/api/v1/users/\(olga.id)", json: API.UserChanges(role: "system"))
            XCTAssertEqual(try admin.decode(API.UserBody.self, promoted).role, .system)
            let blank = try await admin.request(
                .PATCH, "/api/v1/users/\(olga.id)", json: API.UserChanges(password: "", passwordConfirmation: ""))
            XCTAssertEqual(blank.status, .ok, "a blank password keeps the old one")
            try await TestClient(app).signIn("olga", "password-123")

            let changed = try await admin.request(
                .PATCH, "/api/v1/users/\(olga.id)",
                json: API.UserChanges(password: "new-password-9", passwordConfirmation: "new-password-9"))
            XCTAssertEqual(changed.status, .ok)
            try await TestClient(app).signIn("olga", "new-password-9")

            let deleted = try await admin.request(.DELETE, "/api/v1/users/\(olga.id)")
            XCTAssertEqual(deleted.status, .noContent)
            let names = try await usernames(app)
            XCTAssertEqual(names, ["admin"])
            let missing = try await admin.request(.GET, "/api/v1/users/\(olga.id)")
            XCTAssertEqual(missing.status, .notFound)
            XCTAssertEqual(missing.errorCode, "not_found")

            let actions = try await LogEntry.query(on: app.db).filter(\.$kind == "operation").sort(\.$id).all().map(\.action)
            XCTAssertEqual(actions, ["user.add", "user.edit", "user.edit", "user.edit", "user.delete"])
        }
    }

    func testBadInputGetsAClearMessageAndChangesNothing() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            let long = String(repeating: "a", count: 10_240)
            let hostile = ["x'; DROP TABLE users; --", "<script>alert(1)</script>", "\"quoted\"", "a b", "../etc", "ünïcode", "-dash"]
            var cases: [(API.NewUser, HTTPStatus, String)] = [
                (
                    .init(username: "", password: "password-123", passwordConfirmation: "password-123", role: "ordinary"), .badRequest,
                    "user name is required"
                ),
                (.init(username: "newbie", password: "", passwordConfirmation: "", role: "ordinary"), .badRequest, "password is required"),
                (
                    .init(username: "newbie", password: "password-123", passwordConfirmation: "password-124", role: "ordinary"),
                    .badRequest, "do not match"
                ),
                (.init(username: "newbie", password: "short", passwordConfirmation: "short", role: "ordinary"), .badRequest, "at least 8"),
                (
                    .init(
                        username: "newbie", password: String(repeating: "p", count: 80),
                        passwordConfirmation: String(repeating: "p", count: 80),
                        role: "ordinary"), .badRequest, "72 bytes"
                ),
                (
                    .init(username: "newbie", password: "password-123", passwordConfirmation: "password-123", role: "root"), .badRequest,
                    "role must be"
                ),
                (
                    .init(username: long, password: "password-123", passwordConfirmation: "password-123", role: "ordinary"), .badRequest,
                    "at most 64"
                ),
                (
                    .init(username: "admin", password: "password-123", passwordConfirmation: "password-123", role: "ordinary"), .conflict,
                    "already exists"
                ),
            ]
            cases += hostile.map {
                (
                    .init(username: $0, password: "password-123", passwordConfirmation: "password-123", role: "ordinary"), .badRequest,
                    "user name may use"
                )
            }
            for (body, status, message) in cases {
                let response = try await admin.request(.POST, "/api/v1/users", json: body)
                XCTAssertEqual(response.status, status, "\(body.username.prefix(40)): \(response.body.string.prefix(200))")
                XCTAssertTrue(response.body.string.contains(message), "\(body.username.prefix(40)): \(response.body.string.prefix(200))")
            }
            let malformed = try await admin.request(.POST, "/api/v1/users", headers: ["Content-Type": "application/json"])
            XCTAssertEqual(malformed.status, .badRequest)
            let missingField = try await admin.request(.POST, "/api/v1/users", json: ["username": "x"])
            XCTAssertEqual(missingField.status, .badRequest)
            XCTAssertEqual(missingField.errorCode, "validation")
            let names = try await usernames(app)
            XCTAssertEqual(names, ["admin"], "nothing was created")

            // The same through the web form: the message is shown, the input is escaped.
            let page = try await admin.submit(
                "/users",
                [
                    ("username", "<b>bold</b>"), ("password", "password-123"),
                    ("passwordConfirmation", "password-123"), ("role", "ordinary"),
                ])
            XCTAssertEqual(page.status, .badRequest)
            XCTAssertTrue(page.body.string.contains("user name may use"))
            XCTAssertTrue(page.body.string.contains("&lt;b&gt;bold&lt;/b&gt;"))
            XCTAssertFalse(page.body.string.contains("<b>bold</b>"))
            let mismatch = try await admin.submit(
                "/users",
                [
                    ("username", "webuser"), ("password", "password-123"),
                    ("passwordConfirmation", "password-999"), ("role", "ordinary"),
                ])
            XCTAssertTrue(mismatch.body.string.contains("do not match"))
            let hugeForm = try await admin.submit(
                "/users",
                [
                    ("username", long), ("password", "password-123"),
                    ("passwordConfirmation", "password-123"), ("role", "ordinary"),
                ])
            XCTAssertEqual(hugeForm.status, .badRequest)
            let namesAfter = try await usernames(app)
            XCTAssertEqual(namesAfter, ["admin"])
        }
    }

    func testTheLastSystemAdministratorStays() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            let me = try admin.decode(ListResponse<API.UserBody>.self, try await admin.request(.GET, "/api/v1/users")).items[0]
            let demote = try await admin.request(.PATCH, "/api/v1/users/\(me.id)", json: API.UserChanges(role: "ordinary"))
            XCTAssertEqual(demote.status, .conflict)
            XCTAssertTrue(demote.body.string.contains("last system administrator"))
            let delete = try await admin.request(.DELETE, "/api/v1/users/\(me.id)")
            XCTAssertEqual(delete.status, .conflict)
            let role = try await User.query(on: app.db).first()?.role
            XCTAssertEqual(role, .system)

            try await createUser(admin, "second", role: .system)
            let nowAllowed = try await admin.request(.PATCH, "/api/v1/users/\(me.id)", json: API.UserChanges(role: "ordinary"))
            XCTAssertEqual(nowAllowed.status, .ok)
        }
    }

    func testOrdinaryAdministratorsAreRefusedSystemActions() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            try await createUser(admin, "olga", role: .ordinary)
            try await admin.request(.POST, "/api/v1/tokens", json: API.NewToken(name: "noise"))
            let adminID = try admin.decode(ListResponse<API.UserBody>.self, try await admin.request(.GET, "/api/v1/users")).items[0].id
            let logCount = try await LogEntry.query(on: app.db).count()

            let olga = try TestClient(app)
            try await olga.signIn("olga", "password-123")
            let attempts: [(HTTPMethod, String, (any Encodable)?)] = [
                (
                    .POST, "/api/v1/users",
                    API.NewUser(username: "eve", password: "password-123", passwordConfirmation: "password-123", role: "system")
                ),
                (.PATCH, "/api/v1/users/\(adminID)", API.UserChanges(role: "ordinary")),
                (.PATCH, "/api/v1/users/\(adminID)", API.UserChanges(password: "hijacked-123", passwordConfirmation: "hijacked-123")),
                (.DELETE, "/api/v1/users/\(adminID)", nil),
                (.DELETE, "/api/v1/logs", nil),
            ]
            for (method, path, body) in attempts {
                let response = try await olga.request(method, path, json: body)
                XCTAssertEqual(response.status, .forbidden, "\(method) \(path)")
                XCTAssertEqual(response.errorCode, "forbidden")
            }
            for (path, fields) in [
                (
                    "/users",
                    [("username", "eve"), ("password", "password-123"), ("passwordConfirmation", "password-123"), ("role", "system")]
                ),
                ("/users/\(adminID)", [("role", "ordinary")]),
                ("/users/\(adminID)/delete", []), ("/logs/delete", []),
            ] {
                let response = try await olga.submit(path, fields)
                XCTAssertEqual(response.status, .forbidden, path)
            }
            let names = try await usernames(app)
            XCTAssertEqual(names, ["admin", "olga"])
            let adminRole = try await User.find(adminID, on: app.db)?.role
            XCTAssertEqual(adminRole, .system)
            try await TestClient(app).signIn("admin", TestApp.adminPassword)

            let denials = try await LogEntry.query(on: app.db).filter(\.$result == "denied").all()
            XCTAssertEqual(denials.count, 9)
            XCTAssertTrue(denials.allSatisfy { $0.kind == "error" && $0.operatorName == "olga" })
            let logCountAfter = try await LogEntry.query(on: app.db).count()
            XCTAssertGreaterThan(logCountAfter, logCount)

            // What USR-6 does allow: viewing users and changing the own password.
            let own = try await olga.request(
                .POST, "/api/v1/users/me/password",
                json: API.PasswordChange(
                    currentPassword: "password-123", password: "olga-new-pass", passwordConfirmation: "olga-new-pass"))
            XCTAssertEqual(own.status, .ok)
            try await TestClient(app).signIn("olga", "olga-new-pass")
            let wrongCurrent = try await olga.request(
                .POST, "/api/v1/users/me/password",
                json: API.PasswordChange(
                    currentPassword: "guess", password: "olga-newer-pass", passwordConfirmation: "olga-newer-pass"))
            XCTAssertEqual(wrongCurrent.status, .badRequest)
            let usersPage = try await olga.request(.GET, "/users")
            XCTAssertEqual(usersPage.status, .ok)
        }
    }

    func testWebPagesAddEditAndDeleteAUser() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            let added = try await admin.submit(
                "/users",
                [
                    ("username", "webuser"), ("password", "password-123"),
                    ("passwordConfirmation", "password-123"), ("role", "ordinary"),
                ])
            XCTAssertEqual(added.status, .seeOther)
            let list = try await admin.request(.GET, "/users")
            XCTAssertTrue(list.body.string.contains("User &#39;webuser&#39; was added.") || list.body.string.contains("was added"))
            XCTAssertTrue(list.body.string.contains("webuser"))
            let found = try await User.query(on: app.db).filter(\.$username == "webuser").first()
            let user = try XCTUnwrap(found)
            let id = try user.requireID()
            let editPage = try await admin.request(.GET, "/users/\(id)/edit")
            XCTAssertEqual(editPage.status, .ok)
            let edited = try await admin.submit("/users/\(id)", [("password", ""), ("passwordConfirmation", ""), ("role", "system")])
            XCTAssertEqual(edited.status, .seeOther)
            let role = try await User.find(id, on: app.db)?.role
            XCTAssertEqual(role, .system)
            let confirm = try await admin.request(.GET, "/users/\(id)/delete")
            XCTAssertTrue(confirm.body.string.contains("Delete the user"))
            let deleted = try await admin.submit("/users/\(id)/delete")
            XCTAssertEqual(deleted.status, .seeOther)
            let gone = try await User.find(id, on: app.db)
            XCTAssertNil(gone)
        }
    }

    func testUsersHaveAnEmailAndFullNameAndTheListShowsLastSignInAndCanBeSearched() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            for (name, email, fullName) in [
                ("olga", "olga.owner@example.com", "Olga Owner"), ("pete", "pete@ops.example.com", "Peter 100% Sure"),
                ("quinn", "", ""),
            ] {
                let response = try await admin.request(
                    .POST, "/api/v1/users",
                    json: API.NewUser(
                        username: name, password: "password-123", passwordConfirmation: "password-123", role: "ordinary", email: email,
                        fullName: fullName))
                XCTAssertEqual(response.status, .created, response.body.string)
            }
            func search(_ term: String) async throws -> [String] {
                let path = "/api/v1/users?q=" + (term.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
                return try admin.decode(ListResponse<API.UserBody>.self, try await admin.request(.GET, path)).items.map(\.username)
            }
            let byFullName = try await search("oWNER")
            XCTAssertEqual(byFullName, ["olga"], "full name, any case")
            let byAddress = try await search("OPS.example")
            XCTAssertEqual(byAddress, ["pete"], "e-mail address")
            let byName = try await search("qui")
            XCTAssertEqual(byName, ["quinn"])
            let wildcard = try await search("%")
            XCTAssertEqual(wildcard, ["pete"], "% matches itself, not everything")
            let underscore = try await search("_")
            XCTAssertEqual(underscore, [], "_ matches itself, not any character")
            let quote = try await search("'; DROP TABLE users; --")
            XCTAssertEqual(quote, [])
            let everyone = try await search("")
            XCTAssertEqual(everyone, ["admin", "olga", "pete", "quinn"])

            let olga = try admin.decode(ListResponse<API.UserBody>.self, try await admin.request(.GET, "/api/v1/users?q=olga")).items[0]
            XCTAssertEqual(olga.email, "olga.owner@example.com")
            XCTAssertEqual(olga.fullName, "Olga Owner")
            XCTAssertNil(olga.lastSignInAt)
            let quinn = try admin.decode(ListResponse<API.UserBody>.self, try await admin.request(.GET, "/api/v1/users?q=quinn")).items[0]
            XCTAssertNil(quinn.email, "blank is no address")
            let before = try await admin.request(.GET, "/users?q=olga")
            XCTAssertTrue(before.body.string.contains("never"))
            XCTAssertFalse(before.body.string.contains("pete@"), "the page searches too")
            XCTAssertTrue(before.body.string.contains("Show all"))
            let unfiltered = try await admin.request(.GET, "/users")
            XCTAssertFalse(unfiltered.body.string.contains("Show all"), "no way back from a search that was not made")

            let signedInAt = Date()
            try await TestClient(app).signIn("olga", "password-123")
            let after = try admin.decode(API.UserBody.self, try await admin.request(.GET, "/api/v1/users/\(olga.id)"))
            let lastSignIn = try XCTUnwrap(after.lastSignInAt)
            XCTAssertEqual(lastSignIn.timeIntervalSince1970, signedInAt.timeIntervalSince1970, accuracy: 5)
            let page = try await admin.request(.GET, "/users?q=olga")
            XCTAssertFalse(page.body.string.contains("never"))
            XCTAssertTrue(page.body.string.contains(DisplayTime(timeZone: .gmt).string(lastSignIn).prefix(13)))

            // Absent keeps, blank removes, bad input changes nothing.
            let kept = try await admin.request(.PATCH, "/api/v1/users/\(olga.id)", json: API.UserChanges(role: "ordinary"))
            XCTAssertEqual(try admin.decode(API.UserBody.self, kept).email, "olga.owner@example.com")
            let refused = try await admin.request(
                .PATCH, "/api/v1/users/\(olga.id)", json: API.UserChanges(email: "olga@example.com\r\nBcc: x@example.com", fullName: "New"))
            XCTAssertEqual(refused.status, .badRequest)
            let unchanged = try await User.find(olga.id, on: app.db)
            XCTAssertEqual(unchanged?.fullName, "Olga Owner")
            let cleared = try await admin.request(.PATCH, "/api/v1/users/\(olga.id)", json: API.UserChanges(email: ""))
            XCTAssertNil(try admin.decode(API.UserBody.self, cleared).email)

            // The web form takes both fields and shows them again when something else is wrong.
            let added = try await admin.submit(
                "/users",
                [
                    ("username", "webuser"), ("fullName", "Web <b>User</b>"), ("email", "web@example.com"), ("password", "password-123"),
                    ("passwordConfirmation", "password-124"), ("role", "ordinary"),
                ])
            XCTAssertEqual(added.status, .badRequest)
            XCTAssertTrue(added.body.string.contains("value=\"web@example.com\""))
            XCTAssertTrue(added.body.string.contains("Web &lt;b&gt;User&lt;/b&gt;"), "shown escaped")
            let fixed = try await admin.submit(
                "/users",
                [
                    ("username", "webuser"), ("fullName", "Web User"), ("email", "web@example.com"), ("password", "password-123"),
                    ("passwordConfirmation", "password-123"), ("role", "ordinary"),
                ])
            XCTAssertEqual(fixed.status, .seeOther)
            let stored = try await User.query(on: app.db).filter(\.$username == "webuser").first()
            XCTAssertEqual(stored?.email, "web@example.com")
            XCTAssertEqual(stored?.fullName, "Web User")
        }
    }

    func testUserCommandsTakeEmailAndFullNameAndListSearches() async throws {
        try await TestApp.run { app in
            func run(_ arguments: [String], answers: [String] = []) async throws -> String {
                let console = TestConsole()
                console.answers = answers
                var context = CommandContext(console: console, input: CommandInput(arguments: ["flotilla"] + arguments))
                context.application = app
                try await console.run(app.asyncCommands.group(), with: context)
                return console.output
            }
            let added = try await run(
                ["user", "add", "dora", "--email", "dora@example.com", "--full-name", "Dora Ops"],
                answers: ["password-123", "password-123"])
            XCTAssertTrue(added.contains("Added dora"), added)
            do {
                _ = try await run(
                    ["user", "add", "eve", "--email", "eve@example.com\nBcc: x@example.com"], answers: ["password-123", "password-123"])
                XCTFail("a hostile address was accepted")
            } catch let error as FlotillaError {
                XCTAssertEqual(error.kind, .validation)
            }
            let eve = try await User.query(on: app.db).filter(\.$username == "eve").first()
            XCTAssertNil(eve)
            let listing = try await run(["user", "list"])
            XCTAssertTrue(listing.contains("dora\tordinary\tdora@example.com\tDora Ops\tnever"), listing)
            XCTAssertTrue(listing.contains("admin\tsystem\t-\t-\t"), listing)
            let found = try await run(["user", "list", "--search", "OPS"])
            XCTAssertEqual(found.split(separator: "\n").map { String($0.prefix(while: { $0 != "\t" })) }, ["dora"])
        }
    }
}
