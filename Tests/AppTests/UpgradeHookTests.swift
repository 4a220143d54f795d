import Crypto
import Fluent
import Foundation
import XCTVapor

@testable import App

/// Upgrade hooks and auto-upgrade (issue 12 §6): each sender's signature or token and payload,
/// the HTTP answers (404 revealing nothing, 401 audited), branch filters, bad revisions, and
/// bursts coalescing into one queued row that the scheduler turns into one rollout attempt.
final class UpgradeHookTests: XCTestCase {
    private static let secret = "hook-secret-0123456789"
    private static let commit = String(repeating: "a1", count: 20)

    private static func hmac(_ body: Data, _ secret: String = secret) -> String {
        HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8))).map { String(format: "%02x", $0) }.joined()
    }

    private static func giteaPush(ref: String = "refs/heads/main", after: String = commit, by pusher: String = "olga") -> Data {
        Data(
            #"{"ref":"\#(ref)","before":"\#(String(repeating: "0", count: 40))","after":"\#(after)","pusher":{"login":"\#(pusher)"}}"#.utf8)
    }

    private static func headers(_ pairs: [(String, String)]) -> HTTPHeaders {
        HTTPHeaders(pairs)
    }

    // MARK: Signatures and payloads, sender by sender

    func testEverySendersSignatureOrTokenIsCheckedAndItsPayloadRead() throws {
        let gitea = Self.giteaPush()
        let github = Data(#"{"ref":"refs/heads/main","after":"\#(Self.commit)","deleted":false,"pusher":{"name":"gh-user"}}"#.utf8)
        let gitlab = Data(#"{"object_kind":"push","ref":"refs/heads/main","after":"\#(Self.commit)","user_username":"gl-user"}"#.utf8)
        let generic = Data(#"{"revision":"\#(Self.commit)","branch":"main","pushed_by":"ci"}"#.utf8)
        let now = Date()
        let timestamp = String(Int(now.timeIntervalSince1970))
        let genericSignature = "sha256=" + Self.hmac(HookDelivery.genericMessage(timestamp: timestamp, body: generic))
        let cases: [(UpgradeHookFormat, [(String, String)], Data, HookEvent)] = [
            (
                .gitea, [("X-Gitea-Event", "push"), ("X-Gitea-Signature", Self.hmac(gitea))], gitea,
                .push(revision: Self.commit, branch: "main", pushedBy: "olga")
            ),
            (
                .github, [("X-GitHub-Event", "push"), ("X-Hub-Signature-256", "sha256=" + Self.hmac(github))], github,
                .push(revision: Self.commit, branch: "main", pushedBy: "gh-user")
            ),
            (
                .gitlab, [("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", Self.secret)], gitlab,
                .push(revision: Self.commit, branch: "main", pushedBy: "gl-user")
            ),
            (
                .generic, [("X-Flotilla-Timestamp", timestamp), ("X-Flotilla-Signature", genericSignature)], generic,
                .push(revision: Self.commit, branch: "main", pushedBy: "ci")
            ),
            (
                .svn, [("X-Flotilla-Token", Self.secret), ("Content-Type", "application/x-www-form-urlencoded")],
                Data("repository=%2Fsrv%2Fsvn%2Fweb&revision=42&author=svn-user".utf8),
                .push(revision: "42", branch: nil, pushedBy: "svn-user")
            ),
        ]
        for (format, headers, body, expected) in cases {
            let delivery = HookDelivery(format: format, headers: Self.headers(headers), body: body)
            XCTAssertNoThrow(try delivery.verify(secret: Self.secret, now: now), "\(format)")
            XCTAssertEqual(try delivery.event(), expected, "\(format)")
            // The same request checked against another secret, or with its body changed, is refused.
            XCTAssertThrowsError(try delivery.verify(secret: "another-secret-000000", now: now), "\(format) with another secret")
            let tampered = HookDelivery(format: format, headers: Self.headers(headers), body: body + Data(" ".utf8))
            if format != .svn, format != .gitlab {
                XCTAssertThrowsError(try tampered.verify(secret: Self.secret, now: now), "\(format) with a changed body")
            }
            // Without its headers, nothing is accepted.
            XCTAssertThrowsError(try HookDelivery(format: format, headers: [:], body: body).verify(secret: Self.secret, now: now))
        }
        // A generic signature from long ago is a replay.
        let old = HookDelivery(
            format: .generic, headers: Self.headers([("X-Flotilla-Timestamp", timestamp), ("X-Flotilla-Signature", genericSignature)]),
            body: generic)
        XCTAssertThrowsError(try old.verify(secret: Self.secret, now: now.addingTimeInterval(301))) { error in
            XCTAssertEqual((error as? HookDelivery.Refusal)?.reason, "signature timestamp outside ±300 s")
        }
    }

    func testPingsTagsAndDeletedBranchesDeployNothing() throws {
        func event(_ format: UpgradeHookFormat, _ headers: [(String, String)], _ body: String) throws -> HookEvent {
            try HookDelivery(format: format, headers: Self.headers(headers), body: Data(body.utf8)).event()
        }
        XCTAssertEqual(try event(.github, [("X-GitHub-Event", "ping")], #"{"zen":"hi"}"#), .ignored("ping"))
        XCTAssertEqual(
            try event(.gitea, [("X-Gitea-Event", "push")], #"{"ref":"refs/tags/v1","after":"\#(Self.commit)"}"#),
            .ignored("a push to a tag"))
        XCTAssertEqual(
            try event(
                .github, [("X-GitHub-Event", "push")],
                #"{"ref":"refs/heads/x","after":"\#(String(repeating: "0", count: 40))","deleted":true}"#),
            .ignored("a deleted branch"))
        XCTAssertEqual(try event(.gitlab, [("X-Gitlab-Event", "Tag Push Hook")], "{}"), .ignored("a tag push"))
        XCTAssertThrowsError(try event(.gitea, [("X-Gitea-Event", "push")], "not json"))
        XCTAssertThrowsError(try event(.svn, [], "repository=/srv/svn"))
    }

    func testBranchFilters() {
        XCTAssertEqual(AutoUpgradeBranches.patterns("", default: "main"), ["main"])
        XCTAssertEqual(AutoUpgradeBranches.patterns(" release/*, hotfix ", default: "main"), ["release/*", "hotfix"])
        XCTAssertTrue(AutoUpgradeBranches.matches("release/1.2", ["main", "release/*"]))
        XCTAssertFalse(AutoUpgradeBranches.matches("feature/x", ["main", "release/*"]))
        XCTAssertThrowsError(try AutoUpgradeBranches.validate("main; rm -rf /"))
        XCTAssertThrowsError(try AutoUpgradeBranches.validate("--upload-pack=x"))
        XCTAssertEqual(try AutoUpgradeBranches.validate("main,release/*"), "main, release/*")
    }

    // MARK: Through HTTP and the database

    /// A `web` application on a Git repository with one VM in `staging`, a Gitea hook, and
    /// auto-upgrade switched on through the page.
    private func withHookedApplication(
        _ body: (InMemoryWorld, _ hookPath: String, _ applicationID: UUID) async throws -> Void
    ) async throws {
        try await InMemoryWorld.run(["FLOTILLA_UPGRADE_QUIET_SECONDS": "30"]) { world in
            let app = world.app
            try await world.addReadyVM("web-01", "10.77.5.11", in: world.environmentID)
            let role = try await Role.query(on: app.db).filter(\.$name == "web").first()
            let application = UpgradeApplication()
            application.roleID = try XCTUnwrap(role).requireID()
            application.repositoryKind = "git"
            application.repositoryURL = "git://127.0.0.1:9/web.git"
            application.branch = "main"
            application.deployDirectory = "/srv/web"
            application.restartCommand = "sh restart.sh"
            application.healthKind = "http"
            application.healthTarget = "http://127.0.0.1:8000/health"
            application.healthTimeoutSeconds = 10
            application.releasesKept = 5
            try await application.create(on: app.db)
            let applicationID = try application.requireID()

            let created = try await world.admin.submit(
                "/upgrades/hooks", [("format", "gitea"), ("repository", "git://127.0.0.1:9/web.git/")])
            XCTAssertEqual(created.status, .created, created.body.string)
            let hook = try await UpgradeHook.query(on: app.db).first()
            let hookID = try XCTUnwrap(hook).requireID()
            let secret = try app.flotilla.secrets.open(try XCTUnwrap(hook).secretSealed)
            XCTAssertTrue(created.body.string.contains(secret), "the new secret is shown once")
            XCTAssertFalse(try XCTUnwrap(hook).secretSealed.contains(secret), "the secret is sealed at rest")
            let page = try await world.admin.request(.GET, "/upgrades/hooks")
            XCTAssertEqual(page.status, .ok)
            XCTAssertFalse(page.body.string.contains(secret), "never shown back")
            XCTAssertTrue(page.body.string.contains("/api/v1/hooks/gitea/\(hookID.uuidString.lowercased())"))

            let switched = try await world.admin.submit(
                "/upgrades/auto",
                [("application", applicationID.uuidString), ("environment", world.environmentID.uuidString), ("enabled", "on")])
            XCTAssertEqual(switched.status, .seeOther, switched.body.string)
            try await body(world, "/api/v1/hooks/gitea/\(hookID.uuidString.lowercased())", applicationID)
        }
    }

    /// Posts a Gitea push as Gitea would: no session, its own headers, the body as signed.
    private func send(_ world: InMemoryWorld, _ path: String, _ body: Data, secret: String? = nil) async throws -> TestingHTTPResponse {
        let hook = try await UpgradeHook.query(on: world.app.db).first()
        let key = try secret ?? world.app.flotilla.secrets.open(try XCTUnwrap(hook).secretSealed)
        let headers: HTTPHeaders = ["Content-Type": "application/json", "X-Gitea-Event": "push", "X-Gitea-Signature": Self.hmac(body, key)]
        return try await world.app.testable().performTest(
            request: TestingHTTPRequest(method: .POST, url: URI(string: path), headers: headers, body: ByteBuffer(data: body)))
    }

    func testUnknownHooksAre404AndBadSignaturesAreRefusedAndAudited() async throws {
        try await withHookedApplication { world, path, _ in
            let app = world.app
            let anonymous = try TestClient(app)
            let unknownRoute = try await anonymous.request(.POST, "/api/v1/no-such-thing")
            for unknown in [
                "/api/v1/hooks/gitea/\(UUID().uuidString)", "/api/v1/hooks/gitea/not-an-id",
                path.replacingOccurrences(of: "/gitea/", with: "/github/"), "/api/v1/hooks/bitbucket/\(UUID().uuidString)",
            ] {
                let answer = try await send(world, unknown, Self.giteaPush())
                XCTAssertEqual(answer.status, .notFound, unknown)
                XCTAssertEqual(answer.body.string, unknownRoute.body.string, "\(unknown) reveals nothing")
            }
            let refusedBefore = try await LogEntry.query(on: app.db).filter(\.$action == "upgrade.hook.refused").count()
            let forged = try await send(world, path, Self.giteaPush(), secret: "not-the-secret-000000")
            XCTAssertEqual(forged.status, .unauthorized)
            XCTAssertFalse(forged.body.string.contains("X-Gitea-Signature"), "the answer does not say why")
            let refused = try await LogEntry.query(on: app.db).filter(\.$action == "upgrade.hook.refused").all()
            XCTAssertEqual(refused.count, refusedBefore + 1)
            XCTAssertTrue(refused.last?.details.contains("wrong X-Gitea-Signature") ?? false, refused.last?.details ?? "")
            let pending = try await PendingAutoUpgrade.query(on: app.db).count()
            XCTAssertEqual(pending, 0, "a refused hook queues nothing")
        }
    }

    func testFiveQuickCommitsAreOneBurstOfTheNewestRevision() async throws {
        try await withHookedApplication { world, path, applicationID in
            let app = world.app
            let commits = (1...5).map { String(repeating: String(format: "%02x", $0), count: 20) }
            for commit in commits {
                let answer = try await send(world, path, Self.giteaPush(after: commit))
                XCTAssertEqual(answer.status, .accepted, answer.body.string)
            }
            let bursts = try await PendingAutoUpgrade.query(on: app.db).all()
            XCTAssertEqual(bursts.count, 1)
            XCTAssertEqual(bursts.first?.revision, commits.last)
            XCTAssertEqual(bursts.first?.deliveries, 5)
            XCTAssertEqual(bursts.first?.applicationID, applicationID)
            let due = try await PendingAutoUpgrades(database: app.db).due()
            XCTAssertTrue(due.isEmpty, "the quiet period has not passed")

            // Another branch is not followed; the answer says nothing was queued.
            let other = try await send(world, path, Self.giteaPush(ref: "refs/heads/feature/x", after: String(repeating: "b", count: 40)))
            XCTAssertEqual(other.status, .ok, other.body.string)
            let afterOther = try await PendingAutoUpgrade.query(on: app.db).first()
            XCTAssertEqual(afterOther?.deliveries, 5)

            // A hostile "after" is refused before anything is queued.
            let hostile = try await send(world, path, Self.giteaPush(after: "--upload-pack=touch /tmp/x"))
            XCTAssertEqual(hostile.status, .badRequest, hostile.body.string)
            let afterHostile = try await PendingAutoUpgrade.query(on: app.db).first()
            XCTAssertEqual(afterHostile?.revision, commits.last)
        }
    }

    func testBadRevisionsAreNeverAutoApplied() async throws {
        try await withHookedApplication { world, path, applicationID in
            let app = world.app
            let bad = String(repeating: "c", count: 40)
            try await BadRevisions(database: app.db).mark(applicationID: applicationID, revision: bad, reason: "rolled back", by: "admin")
            let answer = try await send(world, path, Self.giteaPush(after: bad))
            XCTAssertEqual(answer.status, .ok, answer.body.string)
            let queued = try await PendingAutoUpgrade.query(on: app.db).count()
            XCTAssertEqual(queued, 0)
            let received = try await LogEntry.query(on: app.db).filter(\.$action == "upgrade.hook.received").all()
            XCTAssertTrue(received.last?.details.contains("skipped: marked bad") ?? false, received.last?.details ?? "")

            // Marked bad while waiting in a burst: the scheduler drops it and says so.
            let later = String(repeating: "d", count: 40)
            _ = try await send(world, path, Self.giteaPush(after: later))
            try await BadRevisions(database: app.db).mark(applicationID: applicationID, revision: later, reason: "rolled back", by: "admin")
            try await PendingAutoUpgrade.query(on: app.db).set(\.$dueAt, to: Date(timeIntervalSinceNow: -1)).update()
            try await AutoUpgradeScheduler(database: app.db, rollouts: app.upgradeRollouts, quietSeconds: 30, logger: app.logger).pass()
            let left = try await PendingAutoUpgrade.query(on: app.db).count()
            XCTAssertEqual(left, 0)
            let skipped = try await LogEntry.query(on: app.db).filter(\.$action == "upgrade.auto.skipped").count()
            XCTAssertEqual(skipped, 1)
            let rollouts = try await UpgradeRollout.query(on: app.db).count()
            XCTAssertEqual(rollouts, 0)
        }
    }

    func testABurstWhoseRepositoryCannotBeReadWaitsForAnotherQuietPeriod() async throws {
        try await withHookedApplication { world, path, _ in
            let app = world.app
            _ = try await send(world, path, Self.giteaPush())
            try await PendingAutoUpgrade.query(on: app.db).set(\.$dueAt, to: Date(timeIntervalSinceNow: -1)).update()
            // Port 9 on loopback has no git daemon: the rollout cannot resolve the revision now.
            try await AutoUpgradeScheduler(database: app.db, rollouts: app.upgradeRollouts, quietSeconds: 30, logger: app.logger).pass()
            let burst = try await PendingAutoUpgrade.query(on: app.db).first()
            XCTAssertGreaterThan(try XCTUnwrap(burst).dueAt, Date().addingTimeInterval(20), "postponed by a quiet period")
            let rollouts = try await UpgradeRollout.query(on: app.db).count()
            XCTAssertEqual(rollouts, 0)
        }
    }
}
