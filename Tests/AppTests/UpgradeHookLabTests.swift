import Fluent
import Foundation
import Lab
import XCTVapor

@testable import App

/// Auto-upgrade end to end in the lab (root, vcsim, guests; run under the lab lock): the lab's
/// real `git daemon` and `svnserve` hold the sample web application; a `git push` whose
/// post-receive hook sends a Gitea webhook, and an `svn commit` whose post-commit hook runs
/// the line the hooks page shows, each become one rollout after which every `web` VM answers
/// /version with the new revision. Five quick pushes make one rollout of the newest.
final class UpgradeHookLabTests: XCTestCase {
    static let lab = LabConfiguration(
        stateDirectory: "/var/lib/flotilla-lab-hooktest", roles: ["web"], preCreatedVMs: 4, pollInterval: .milliseconds(250))
    static let quietSeconds = 3

    func testGitPushesAndSVNCommitsRollOutThroughTheirHooks() async throws {
        let port = try freeLoopbackPort()
        try await Self.lab.withApp(["FLOTILLA_UPGRADE_QUIET_SECONDS": "\(Self.quietSeconds)"]) { app, vcsim in
            // The hooks run in the repository servers' processes and reach Flotilla over real HTTP.
            try await app.server.start(address: .hostname("127.0.0.1", port: port))
            do {
                try await exercise(app, vcsim: vcsim, base: "http://127.0.0.1:\(port)")
            } catch {
                await app.server.shutdown()
                throw error
            }
            await app.server.shutdown()
        }
    }

    private func exercise(_ app: Application, vcsim: VcsimProcess, base: String) async throws {
        let repositories = LabRepositories(configuration: Self.lab)
        let admin = try TestClient(app)
        try await admin.signIn("admin", TestApp.adminPassword)
        let adopted = try await admin.adoptLab(Self.lab, vcsim: vcsim, roles: ["web"], patience: .seconds(120))
        XCTAssertEqual(adopted, 4)
        let flotilla = app.flotilla
        let foundRole = try await Role.query(on: app.db).filter(\.$name == "web").first()
        let roleID = try XCTUnwrap(foundRole).requireID()
        let foundEnvironment = try await Environment.query(on: app.db).filter(\.$name == "lab").first()
        let environmentID = try XCTUnwrap(foundEnvironment).requireID()
        let addresses = try await VM.query(on: app.db).filter(\.$role.$id == roleID).all().map(\.ip)
        XCTAssertEqual(addresses.count, 4)

        let applications = UpgradeApplications(database: app.db, secrets: flotilla.secrets, actor: .system, logger: app.logger)
        func application(_ kind: String, _ url: String, branch: String?) async throws -> UUID {
            try await applications.save(
                .init(
                    repositoryKind: kind, repositoryURL: url, branch: branch, deployDirectory: "/srv/web", restartCommand: "sh restart.sh",
                    healthKind: "http", healthTarget: "http://127.0.0.1:8000/health", healthTimeoutSeconds: 15),
                roleID: roleID
            ).requireID()
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("hook-lab-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }

        // Git: a Gitea hook, auto-upgrade on, the stand-in Gitea post-receive hook in the bare repository.
        let gitApplication = try await application("git", repositories.gitURL, branch: "main")
        let gitHook = try await addHook(admin, app, format: "gitea", repository: repositories.gitURL)
        try await switchOn(admin, application: gitApplication, environment: environmentID)
        let bare = URL(fileURLWithPath: repositories.gitDirectory)
        try runTool("git", ["config", "flotilla.hookurl", try UpgradeHooks.endpoint(gitHook.hook, base: base)], in: bare)
        try runTool("git", ["config", "flotilla.hooksecret", gitHook.secret], in: bare)
        let postReceive = bare.appendingPathComponent("hooks/post-receive").path
        try? FileManager.default.removeItem(atPath: postReceive)
        try FileManager.default.copyItem(atPath: Self.lab.scriptsDirectory + "/gitea-post-receive.sh", toPath: postReceive)

        let clone = scratch.appendingPathComponent("clone")
        try runTool("git", ["clone", "-q", repositories.gitURL, clone.path], in: scratch)
        let identity = ["-c", "user.name=Lab", "-c", "user.email=lab@flotilla.lab"]
        func pushCommit(_ text: String) throws -> String {
            try text.write(to: clone.appendingPathComponent("CHANGES"), atomically: true, encoding: .utf8)
            try runTool("git", ["add", "CHANGES"], in: clone)
            try runTool("git", identity + ["commit", "-q", "-m", text], in: clone)
            try runTool("git", ["push", "-q", "origin", "main"], in: clone)
            return try runTool("git", ["rev-parse", "HEAD"], in: clone).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        let first = try pushCommit("first hooked commit")
        let firstRollout = try await waitForRollout(app, count: 1, revision: first)
        try await assertEveryVM(addresses, answers: first)
        print("hook lab: git push → every web VM on \(first.prefix(12)) in \(firstRollout)")

        // Five quick pushes: one rollout, of the newest.
        var newest = ""
        for number in 1...5 { newest = try pushCommit("burst commit \(number)") }
        let burstRollout = try await waitForRollout(app, count: 2, revision: newest)
        try await assertEveryVM(addresses, answers: newest)
        try await Task.sleep(for: .seconds(Self.quietSeconds + 2))
        let rolloutsAfterBurst = try await UpgradeRollout.query(on: app.db).count()
        XCTAssertEqual(rolloutsAfterBurst, 2, "five pushes in a burst are one rollout")
        print("hook lab: 5 pushes → 1 rollout of \(newest.prefix(12)) in \(burstRollout)")

        // SVN: the application moves to the SVN trunk; the post-commit hook is the page's line.
        let svnApplication = try await application("svn", repositories.svnURL, branch: nil)
        XCTAssertEqual(svnApplication, gitApplication, "one application per role")
        let svnRoot = repositories.svnURL.replacingOccurrences(of: "/trunk", with: "")
        let svnHook = try await addHook(admin, app, format: "svn", repository: svnRoot)
        XCTAssertTrue(svnHook.page.contains("REPOS"), "the page shows the post-commit line")
        let line = UpgradeHooks.postCommitLine(endpoint: try UpgradeHooks.endpoint(svnHook.hook, base: base), token: svnHook.secret)
        let postCommit = repositories.svnDirectory + "/hooks/post-commit"
        try "#!/bin/sh\nREPOS=\"$1\"\nREV=\"$2\"\n\(line)\n".write(toFile: postCommit, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: postCommit)
        let workingCopy = scratch.appendingPathComponent("wc")
        let svnOptions = ["--non-interactive", "--no-auth-cache", "--username", "lab", "--password", "lab"]
        try runTool("svn", ["checkout", "-q"] + svnOptions + [repositories.svnURL, workingCopy.path], in: scratch)
        try "svn change\n".write(to: workingCopy.appendingPathComponent("CHANGES"), atomically: true, encoding: .utf8)
        try runTool("svn", ["add", "-q", "CHANGES"], in: workingCopy)
        let committed = try runTool("svn", ["commit"] + svnOptions + ["-m", "hooked SVN commit"], in: workingCopy)
        let revision = try XCTUnwrap(
            committed.split(separator: " ").last.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: ".\n")) })
        let svnRollout = try await waitForRollout(app, count: 3, revision: revision)
        try await assertEveryVM(addresses, answers: revision)
        print("hook lab: svn commit r\(revision) → every web VM in \(svnRollout)")
        let received = try await LogEntry.query(on: app.db).filter(\.$action == "upgrade.hook.received").count()
        XCTAssertEqual(received, 7)
        // The upgrade log names the hook that started each rollout (issue 12 §7).
        let started = try await LogEntry.query(on: app.db).filter(\.$kind == LogKind.upgrade.rawValue)
            .filter(\.$action == "upgrade.start").all()
        XCTAssertEqual(started.map { $0.operatorName?.hasPrefix("hook:") }, [true, true, true], "\(started.map(\.operatorName))")
    }

    private func addHook(
        _ admin: TestClient, _ app: Application, format: String, repository: String
    ) async throws -> (
        hook: UpgradeHook, secret: String, page: String
    ) {
        let answer = try await admin.submit("/upgrades/hooks", [("format", format), ("repository", repository)])
        XCTAssertEqual(answer.status, .created, answer.body.string)
        let found = try await UpgradeHook.query(on: app.db).filter(\.$format == format).first()
        let hook = try XCTUnwrap(found)
        return (hook, try app.flotilla.secrets.open(hook.secretSealed), answer.body.string)
    }

    private func switchOn(_ admin: TestClient, application: UUID, environment: UUID) async throws {
        let answer = try await admin.submit(
            "/upgrades/auto", [("application", application.uuidString), ("environment", environment.uuidString), ("enabled", "on")])
        XCTAssertEqual(answer.status, .seeOther, answer.body.string)
    }

    /// Waits for the `count`-th rollout to be of `revision` and to finish; returns how long from now.
    private func waitForRollout(_ app: Application, count: Int, revision: String) async throws -> Duration {
        let clock = ContinuousClock()
        let started = clock.now
        while clock.now - started < .seconds(120) {
            let rollouts = try await UpgradeRollout.query(on: app.db).sort(\.$createdAt).all()
            if rollouts.count >= count, let last = rollouts.last, last.state != .running {
                XCTAssertEqual(rollouts.count, count)
                XCTAssertEqual(last.revision, revision)
                XCTAssertEqual(last.state, .succeeded, last.reason ?? "")
                XCTAssertTrue(last.trigger.hasPrefix("hook:"), last.trigger)
                return clock.now - started
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        XCTFail("no finished rollout of \(revision) within 120 s")
        return clock.now - started
    }

    private func assertEveryVM(_ addresses: [String], answers revision: String) async throws {
        for address in addresses {
            let version = try runTool(
                "curl", ["-fsS", "-m", "5", "http://\(address):8000/version"], in: FileManager.default.temporaryDirectory)
            XCTAssertEqual(version.trimmingCharacters(in: .whitespacesAndNewlines), revision, address)
        }
    }
}
