import Foundation
import Lab
import XCTest

/// `flotctl vm add|show|power|password|network|delete` against `flotilla serve` with a real
/// vSphere (vcsim) and a real guest (issue 14 item 2). Needs root; run under the lab lock.
final class ClientVMCommandsLabTests: XCTestCase {
    static let lab = LabConfiguration(
        stateDirectory: "/var/lib/flotilla-lab-clientvm", vcsim: .launch(VcsimLaunch()), roles: ["web"],
        pollInterval: .milliseconds(250))

    func testAVMIsAddedShownPoweredReconfiguredAndDeletedThroughTheClient() async throws {
        try await Lab.withRunning(Self.lab) { vcsim in
            let server = try RunningServer()
            defer { server.stop() }
            let client = try ClientRunner()
            defer { client.remove() }
            try client.loginAsAdmin(server)
            try await server.addLabWebRole(token: try client.storedToken(), vcsim: vcsim)
            XCTAssertEqual(try client.run(["env", "add", "cli-vms"]).status, 0)

            let added = try client.run(
                [
                    "vm", "add", "cli-vms", "--host-name", "cli-web-1", "--role", "web", "--ip", "10.77.32.10", "--netmask", "255.255.0.0",
                    "--gateway", "10.77.0.1", "--password-stdin", "--follow",
                ], input: "Guest-pass-2026\n", timeout: 240)
            XCTAssertEqual(added.status, 0, "\(added)\n\(server.log.suffix(3000))")
            XCTAssertTrue(added.output.contains("job succeeded"), "\(added)")
            let shown = try client.run(["vm", "show", "cli-web-1", "--json"])
            let vm = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(shown.output.utf8)) as? [String: Any], "\(shown)")
            XCTAssertEqual(vm["ip"] as? String, "10.77.32.10")
            XCTAssertEqual(vm["status"] as? String, "ready")

            for action in ["off", "on"] {
                let powered = try client.run(["vm", "power", action, "cli-web-1", "--follow"], timeout: 180)
                XCTAssertEqual(powered.status, 0, "power \(action): \(powered)")
            }
            let password = try client.run(
                ["vm", "password", "cli-web-1", "--password-stdin", "--follow"], input: "Guest-pass-2027\n", timeout: 180)
            XCTAssertEqual(password.status, 0, "\(password)")
            let network = try client.run(
                ["vm", "network", "cli-web-1", "--ip", "10.77.32.11", "--netmask", "255.255.0.0", "--gateway", "10.77.0.1", "--follow"],
                timeout: 240)
            XCTAssertEqual(network.status, 0, "\(network)")
            XCTAssertTrue(try client.run(["vm", "show", "cli-web-1"]).output.contains("10.77.32.11"))
            XCTAssertEqual(try client.run(["vm", "power", "sideways", "cli-web-1"]).status, 2)

            let deleted = try client.run(["vm", "delete", "cli-web-1", "--yes", "--follow"], timeout: 180)
            XCTAssertEqual(deleted.status, 0, "\(deleted)")
            XCTAssertEqual(try client.run(["vm", "show", "cli-web-1"]).status, 4)
            XCTAssertEqual(try client.run(["env", "delete", "cli-vms", "--follow"], timeout: 120).status, 0)
        }
    }
}
