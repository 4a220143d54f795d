import Foundation
import XCTest

/// `flotctl config …` run as a program against `flotilla serve` (issue 13): profiles listed and
/// shown (never a secret's value), a run checked, and the refusals scripts rely on (exit 2 for
/// a missing choice, 4 for an unknown profile or run). The wizard on real guests is in the lab
/// tests of the server; here the server has no VMs.
final class ConfigurationClientTests: XCTestCase {
    private static let profile = """
        name: cli-sample
        description: made for the client test
        secrets: [api_key]
        dependencies: {}
        targets:
          web:
            files:
              - path: /opt/app/settings.py
                owner: root
                mode: "0640"
                template: |
                  KEY = "{{secrets.api_key}}"

        """

    func testProfilesCheckAndRefusalsThroughTheClient() async throws {
        let server = try RunningServer()
        let client = try ClientRunner()
        defer {
            client.remove()
            server.stop()
        }
        try client.loginAsAdmin(server)
        XCTAssertEqual(try client.run(["env", "add", "cli-config"]).status, 0)
        try await addProfile(server, token: try client.storedToken())

        let list = try client.run(["config", "profiles"])
        XCTAssertEqual(list.status, 0, "\(list)")
        XCTAssertTrue(
            list.output.split(separator: "\n").contains { $0.hasPrefix("cli-sample ") && $0.contains("made for the client test") },
            "\(list)")
        let shown = try client.run(["config", "profiles", "show", "cli-sample"])
        XCTAssertEqual(shown.status, 0, "\(shown)")
        XCTAssertTrue(shown.output.contains("cli-sample version 1; secrets set: api_key"), "\(shown)")
        XCTAssertTrue(shown.output.contains("KEY = \"{{secrets.api_key}}\""), "\(shown)")
        XCTAssertFalse(shown.output.contains("key-value-1"), "a secret's value is never shown")
        XCTAssertEqual(try client.run(["config", "profiles", "show", "no-such-profile"]).status, 4)

        // No dependency to choose: the check passes from the platform alone and names the run.
        let checked = try client.run(["config", "check", "cli-sample", "cli-config"])
        XCTAssertEqual(checked.status, 0, "\(checked)")
        let runLine = try XCTUnwrap(checked.output.split(separator: "\n").first { $0.hasPrefix("run ") }, "\(checked)")
        XCTAssertTrue(runLine.contains(": every check passed in "), "\(checked)")
        let run = String(runLine.split(separator: " ")[1].dropLast())
        XCTAssertNotNil(UUID(uuidString: run), "\(checked)")

        let preview = try client.run(["config", "preview", run])
        XCTAssertEqual(preview.status, 2, "\(preview)")
        XCTAssertTrue(preview.errors.contains("cli-config has no VM of the profile's target roles"), "\(preview)")
        let configure = try client.run(["config", "configure", UUID().uuidString, "--follow"])
        XCTAssertEqual(configure.status, 4, "\(configure)")
        XCTAssertTrue(configure.errors.contains("no such configuration run"), "\(configure)")

        // A profile that needs a dependency the environment lacks: refused before anything runs.
        try await addProfile(
            server, token: try client.storedToken(),
            document: Self.profile.replacingOccurrences(of: "cli-sample", with: "cli-redis").replacingOccurrences(
                of: "dependencies: {}", with: "dependencies:\n  redis: { checks: [{ kind: redis }] }"))
        let missing = try client.run(["config", "check", "cli-redis", "cli-config"])
        XCTAssertEqual(missing.status, 2, "\(missing)")
        XCTAssertTrue(
            missing.errors.contains("cli-config has 0 VMs of role redis: choose one with --dependency redis=VM"), "\(missing)")
    }

    private func addProfile(_ server: RunningServer, token: String, document: String = profile) async throws {
        try await server.sendJSON(
            "/api/v1/service-profiles", ["document": document, "secrets": ["api_key": "key-value-1"]], token: token)
    }
}
