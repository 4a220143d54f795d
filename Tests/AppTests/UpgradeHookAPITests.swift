import Crypto
import Fluent
import Foundation
import XCTVapor

@testable import App

/// `/api/v1/upgrade-hooks` (issue 12 §6): hooks listed, added and deleted through the API; the
/// token or secret answered once, at creation, and never again; bad input changes nothing;
/// ordinary administrators may do none of it.
final class UpgradeHookAPITests: XCTestCase {
    func testHooksAreAddedListedAndDeletedAndTheirSecretIsShownOnce() async throws {
        try await InMemoryWorld.run { world in
            let admin = world.admin
            let added = try await admin.request(
                .POST, "/api/v1/upgrade-hooks", json: UpgradeHooksAPI.NewHook(format: "gitea", repositoryURL: "git://10.77.0.1/web.git"))
            XCTAssertEqual(added.status, .created, added.body.string)
            let hook = try admin.decode(API.UpgradeHookBody.self, added)
            let secret = try XCTUnwrap(hook.secret)
            let stored = try await UpgradeHook.find(hook.id, on: world.app.db)
            XCTAssertEqual(try world.app.flotilla.secrets.open(try XCTUnwrap(stored).secretSealed), secret)
            XCTAssertFalse(try XCTUnwrap(stored).secretSealed.contains(secret), "sealed at rest")
            XCTAssertTrue(hook.endpoint.hasSuffix("/api/v1/hooks/gitea/\(hook.id.uuidString.lowercased())"), hook.endpoint)
            XCTAssertNil(hook.postCommitLine)

            let svn = try admin.decode(
                API.UpgradeHookBody.self,
                try await admin.request(
                    .POST, "/api/v1/upgrade-hooks", json: UpgradeHooksAPI.NewHook(format: "svn", repositoryURL: "svn://10.77.0.1/repos")))
            let token = try XCTUnwrap(svn.secret)
            XCTAssertTrue(svn.postCommitLine?.contains("X-Flotilla-Token: \(token)") == true, svn.postCommitLine ?? "")

            let listed = try await admin.request(.GET, "/api/v1/upgrade-hooks")
            XCTAssertEqual(listed.status, .ok)
            XCTAssertFalse(listed.body.string.contains(secret), "never shown again")
            XCTAssertFalse(listed.body.string.contains(token), "never shown again")
            let hooks = try admin.decode([API.UpgradeHookBody].self, listed)
            XCTAssertEqual(hooks.map(\.format), ["gitea", "svn"])
            XCTAssertTrue(hooks.allSatisfy { $0.secret == nil })
            XCTAssertTrue(hooks[1].postCommitLine?.contains("X-Flotilla-Token: TOKEN") == true, hooks[1].postCommitLine ?? "")

            // The secret answered is the one the endpoint checks: a push signed with it is taken.
            let push = Data(#"{"ref":"refs/heads/main","after":"\#(String(repeating: "a1", count: 20))","pusher":{"login":"olga"}}"#.utf8)
            let signature = HMAC<SHA256>.authenticationCode(for: push, using: SymmetricKey(data: Data(secret.utf8)))
                .map { String(format: "%02x", $0) }.joined()
            let delivered = try await world.app.testable().performTest(
                request: TestingHTTPRequest(
                    method: .POST, url: URI(string: "/api/v1/hooks/gitea/\(hook.id)"),
                    headers: ["Content-Type": "application/json", "X-Gitea-Event": "push", "X-Gitea-Signature": signature],
                    body: ByteBuffer(data: push)))
            XCTAssertEqual(delivered.status, .ok, delivered.body.string)

            let deleted = try await admin.request(.DELETE, "/api/v1/upgrade-hooks/\(hook.id)")
            XCTAssertEqual(deleted.status, .noContent)
            let again = try await admin.request(.DELETE, "/api/v1/upgrade-hooks/\(hook.id)")
            XCTAssertEqual(again.status, .notFound)
            let gone = try await world.app.testable().performTest(
                request: TestingHTTPRequest(
                    method: .POST, url: URI(string: "/api/v1/hooks/gitea/\(hook.id)"),
                    headers: ["Content-Type": "application/json", "X-Gitea-Event": "push", "X-Gitea-Signature": signature],
                    body: ByteBuffer(data: push)))
            XCTAssertEqual(gone.status, .notFound, "a deleted hook is gone")
            let audited = try await LogEntry.query(on: world.app.db)
                .filter(\.$action ~~ ["upgrade.hook.add", "upgrade.hook.delete"]).count()
            XCTAssertEqual(audited, 3)
        }
    }

    func testBadInputIsAClearErrorAndChangesNothing() async throws {
        try await InMemoryWorld.run { world in
            let cases: [(String, String, String)] = [
                ("bitbucket", "git://10.77.0.1/web.git", "the sender is one of"),
                ("gitea", "file:///etc", "needs a git, http, https, ssh URL with a host"),
                ("gitea", "--upload-pack=touch /tmp/x", "must not start with '-'"),
                ("svn", "git://10.77.0.1/web.git", "needs a http, https, svn, svn+ssh URL with a host"),
            ]
            for (format, url, message) in cases {
                let answer = try await world.admin.request(
                    .POST, "/api/v1/upgrade-hooks", json: UpgradeHooksAPI.NewHook(format: format, repositoryURL: url))
                XCTAssertEqual(answer.status, .badRequest, "\(format) \(url): \(answer.body.string)")
                XCTAssertTrue(answer.body.string.contains(message), answer.body.string)
            }
            let hooks = try await UpgradeHook.query(on: world.app.db).count()
            XCTAssertEqual(hooks, 0)
        }
    }

    func testOrdinaryAdministratorsMayNotSeeOrChangeHooks() async throws {
        try await InMemoryWorld.run { world in
            let created = try await world.admin.request(
                .POST, "/api/v1/users",
                json: API.NewUser(
                    username: "olga", password: "Ordinary-pass-1", passwordConfirmation: "Ordinary-pass-1", role: "ordinary",
                    email: nil, fullName: nil))
            XCTAssertEqual(created.status, .created, created.body.string)
            let ordinary = try TestClient(world.app)
            try await ordinary.signIn("olga", "Ordinary-pass-1")
            let list = try await ordinary.request(.GET, "/api/v1/upgrade-hooks")
            XCTAssertEqual(list.status, .forbidden)
            let add = try await ordinary.request(
                .POST, "/api/v1/upgrade-hooks", json: UpgradeHooksAPI.NewHook(format: "gitea", repositoryURL: "git://10.77.0.1/web.git"))
            XCTAssertEqual(add.status, .forbidden)
            let hooks = try await UpgradeHook.query(on: world.app.db).count()
            XCTAssertEqual(hooks, 0)
        }
    }
}
