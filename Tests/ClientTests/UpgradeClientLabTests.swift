import Foundation
import Lab
import XCTest

/// `flotctl upgrades` on real guests (issue 12): two lab `web` VMs get the sample application
/// from the lab's `git daemon` with `start … --follow`, a second commit the same way, and
/// `rollback … --follow` puts them back. Needs root; run under the lab lock.
final class UpgradeClientLabTests: XCTestCase {
    static let lab = LabConfiguration(
        stateDirectory: "/var/lib/flotilla-lab-clientupgrade", vcsim: .launch(VcsimLaunch()), roles: ["web"],
        pollInterval: .milliseconds(250))

    func testStartAndRollbackWithFollowThroughTheClient() async throws {
        let work = try temporaryFolder("flotctl-upgrade-clone")
        defer { try? FileManager.default.removeItem(atPath: work) }
        try await Lab.withRunning(Self.lab) { vcsim in
            let server = try RunningServer()
            defer { server.stop() }
            let client = try ClientRunner()
            defer { client.remove() }
            try client.loginAsAdmin(server)
            let token = try client.storedToken()
            let repository = LabRepositories(configuration: Self.lab).gitURL
            try await addWebApplication(server, token: token, vcsim: vcsim, repository: repository)
            let blueprint = client.configHome + "/cli-upgrade.yaml"
            try """
            name: cli-upgrade
            roles: { web: 2 }
            network:
              range: 10.77.32.10-10.77.32.20
              netmask: 255.255.0.0
              gateway: 10.77.0.1
            password: shared
            """.write(toFile: blueprint, atomically: true, encoding: .utf8)
            let deploy = try client.run(["deploy", blueprint, "--follow", "--password-stdin"], input: "Guest-pass-2026\n", timeout: 240)
            XCTAssertEqual(deploy.status, 0, "\(deploy)")

            let first = try client.run(["upgrades", "start", "cli-upgrade", "main", "--follow"], timeout: 180)
            XCTAssertEqual(first.status, 0, "\(first)\n\(server.log.suffix(3000))")
            XCTAssertTrue(first.output.contains("job succeeded"), "\(first)")
            let firstCommit = try git(["ls-remote", repository, "refs/heads/main"], in: work).prefix(12)

            // A second commit, pushed as a developer would, rolled out one VM at a time.
            let clone = work + "/web"
            _ = try git(["clone", "-q", repository, clone], in: work)
            try "second\n".write(toFile: clone + "/CHANGES", atomically: true, encoding: .utf8)
            _ = try git(["add", "CHANGES"], in: clone)
            _ = try git(["-c", "user.name=Dev", "-c", "user.email=dev@flotilla.lab", "commit", "-q", "-m", "second"], in: clone)
            _ = try git(["push", "-q", "origin", "main"], in: clone)
            let secondCommit = try git(["rev-parse", "HEAD"], in: clone).prefix(12)
            let second = try client.run(
                ["upgrades", "start", "cli-upgrade", "main", "--batch-size", "1", "--pause", "0", "--follow"], timeout: 180)
            XCTAssertEqual(second.status, 0, "\(second)")
            let shown = try client.run(["upgrades", "show", "web"])
            XCTAssertEqual(
                shown.output.split(separator: "\n").filter { $0.contains("cli-upgrade-web-0") && $0.contains(secondCommit) }.count, 2,
                "\(shown)")

            let rollback = try client.run(["upgrades", "rollback", "cli-upgrade", "--follow"], timeout: 120)
            XCTAssertEqual(rollback.status, 0, "\(rollback)")
            let after = try client.run(["upgrades", "show", "web", "--json"])
            let document = try JSONSerialization.jsonObject(with: Data(after.output.utf8)) as? [String: Any]
            let current = (document?["vms"] as? [[String: Any]] ?? []).compactMap { $0["currentRevision"] as? String }
            XCTAssertEqual(current.count, 2, "\(after)")
            XCTAssertTrue(current.allSatisfy { $0.hasPrefix(firstCommit) }, "back on the first commit: \(after)")
            XCTAssertEqual(try client.run(["env", "delete", "cli-upgrade", "--follow"], timeout: 120).status, 0)
        }
    }

    /// The `lab` connection, a `web` role and its application on the lab's Git server, through the API.
    private func addWebApplication(_ server: RunningServer, token: String, vcsim: VcsimProcess, repository: String) async throws {
        let roleID = try await server.addLabWebRole(token: token, vcsim: vcsim)
        try await server.sendJSON(
            "/api/v1/roles/\(roleID)/application", put: true,
            [
                "repositoryKind": "git", "repositoryURL": repository, "branch": "main", "deployDirectory": "/srv/web",
                "restartCommand": "sh restart.sh", "healthKind": "http", "healthTarget": "http://127.0.0.1:8000/health",
                "healthTimeoutSeconds": 15,
            ], token: token, expect: 200)
    }

    /// Runs the stock `git` client; its standard output.
    private func git(_ arguments: [String], in directory: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw HarnessError("git \(arguments.joined(separator: " ")) failed") }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
