import Foundation
import Lab
import XCTest

/// The README's walk with a real vSphere (vcsim) and real guests: log in, deploy a blueprint of
/// two VMs with --follow, delete the environment. Needs root; run under the lab lock.
final class ClientLabTests: XCTestCase {
    /// vcsim refuses to create VMs whose name starts with `bad-`, as a full cluster would.
    static let lab = LabConfiguration(
        stateDirectory: "/var/lib/flotilla-lab-clienttest",
        vcsim: .launch(VcsimLaunch(extraArguments: ["-fail-prefix", "bad-", "-fail-fault", "InsufficientResourcesFault"])),
        roles: ["web"], pollInterval: .milliseconds(250))

    func testDeployWithFollowShowsEachVMToTheEndAndItsExitCodeSaysHowTheJobEnded() async throws {
        try await Lab.withRunning(Self.lab) { vcsim in
            let server = try RunningServer()
            defer { server.stop() }
            let client = try ClientRunner()
            defer { client.remove() }
            try client.loginAsAdmin(server)
            try await server.addLabWebRole(token: try client.storedToken(), vcsim: vcsim)
            let blueprint = try writeBlueprint(named: "cli-lab", range: "10.77.31.10-10.77.31.20", in: client.configHome)
            let deploy = try client.run(["deploy", blueprint, "--follow", "--password-stdin"], input: "Guest-pass-2026\n", timeout: 240)
            XCTAssertEqual(deploy.status, 0, "\(deploy)\n\(server.log.suffix(3000))")
            for line in ["cli-lab-web-01: succeeded", "cli-lab-web-02: succeeded", "progress: 100 %", "job succeeded"] {
                XCTAssertTrue(deploy.output.contains(line), "plain progress lines when not a terminal, '\(line)' among them: \(deploy)")
            }
            XCTAssertFalse(deploy.output.contains("\u{1B}["), "no terminal control codes in a pipe")
            let shown = try client.run(["env", "show", "cli-lab"])
            XCTAssertEqual(
                shown.output.split(separator: "\n").filter { $0.contains("cli-lab-web-0") && $0.contains("ready") }.count, 2, "\(shown)")

            let deleted = try client.run(["env", "delete", "cli-lab", "--follow", "--json"], timeout: 120)
            XCTAssertEqual(deleted.status, 0, "\(deleted)")
            let finished = try JSONSerialization.jsonObject(with: Data(deleted.output.utf8)) as? [String: Any]
            XCTAssertEqual(finished?["status"] as? String, "succeeded", "--follow --json prints the finished job: \(deleted)")
            XCTAssertEqual(try client.run(["env", "show", "cli-lab"]).status, 4)

            let refusedByVSphere = try writeBlueprint(named: "bad-lab", range: "10.77.31.30-10.77.31.40", in: client.configHome)
            let failed = try client.run(
                ["deploy", refusedByVSphere, "--follow", "--password-stdin"], input: "Guest-pass-2026\n", timeout: 240)
            XCTAssertEqual(failed.status, 1, "a job that fails exits 1: \(failed)")
            XCTAssertTrue(failed.output.contains("bad-lab-web-01: failed"), "\(failed)")
            XCTAssertTrue(failed.errors.contains("ended failed"), "\(failed)")
            XCTAssertTrue(failed.output.contains("InsufficientResources"), "the failed step's log is shown: \(failed)")
            XCTAssertEqual(try client.run(["env", "delete", "bad-lab", "--follow"], timeout: 120).status, 0)
        }
    }

    /// A blueprint of two `web` VMs with a shared password; returns its path.
    private func writeBlueprint(named name: String, range: String, in folder: String) throws -> String {
        let path = folder + "/\(name).yaml"
        try """
        name: \(name)
        description: deployed by flotctl
        roles: { web: 2 }
        network:
          range: \(range)
          netmask: 255.255.0.0
          gateway: 10.77.0.1
        password: shared
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
