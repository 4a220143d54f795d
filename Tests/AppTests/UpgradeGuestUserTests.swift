import Foundation
import RemoteShell
import XCTest

@testable import App

/// Whose rights the release scripts use on the guest (issue 12 §3), with the real scripts run
/// on this machine standing in for a guest. The build and the health command run repository
/// code (a push is enough to change it, and auto-upgrade deploys every push), so they run as
/// the role's user; unpacking, the `current` link and the restart command (a service manager's)
/// are root's work.
final class UpgradeGuestUserTests: XCTestCase {
    private static let release = "0123456789ab-20261204T050000000Z"

    func testTheBuildAndTheHealthCommandRunAsTheRolesUserAndTheRestartAsRoot() async throws {
        try XCTSkipIf(getuid() != 0, "runs the scripts as root and as another user")
        let deploy = try Self.deployDirectory()
        defer { try? FileManager.default.removeItem(atPath: deploy) }
        let guest = Self.guest(loggedInAs: "nobody")

        let staged = try await guest.stage(
            tarball: try Self.tarball(), deployDirectory: deploy, name: Self.release, revision: "0123456789abcdef",
            buildCommand: "id -un > BUILT_BY", kept: 5)
        XCTAssertTrue(staged.contains("staged"), staged)
        XCTAssertEqual(try Self.read("\(deploy)/releases/\(Self.release)/BUILT_BY"), "nobody")

        _ = try await guest.switchTo(Self.release, deployDirectory: deploy, restartCommand: "id -un > RESTARTED_BY")
        XCTAssertEqual(try Self.read("\(deploy)/current/RESTARTED_BY"), "root")

        let healthy = try await guest.commandIsHealthy(#"test "$(id -un)" = nobody"#, deployDirectory: deploy)
        XCTAssertTrue(healthy, "the health command did not run as the role's user")
    }

    func testARootLoginBuildsAsRoot() async throws {
        try XCTSkipIf(getuid() != 0, "runs the scripts as root")
        let deploy = try Self.deployDirectory()
        defer { try? FileManager.default.removeItem(atPath: deploy) }
        _ = try await Self.guest(loggedInAs: "root").stage(
            tarball: try Self.tarball(), deployDirectory: deploy, name: Self.release, revision: "0123456789abcdef",
            buildCommand: "id -un > BUILT_BY", kept: 5)
        XCTAssertEqual(try Self.read("\(deploy)/releases/\(Self.release)/BUILT_BY"), "root")
    }

    private static func guest(loggedInAs user: String) -> GuestReleases {
        GuestReleases(
            shell: ThisMachineAsGuest(),
            target: SSHTarget(host: "localhost", user: user, authentication: .password("unused")), user: user)
    }

    /// A deploy directory others may enter, as on a guest.
    private static func deployDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("guest-user-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        return path
    }

    /// A release tarball with one file, as `ReleaseArchive` makes them.
    private static func tarball() throws -> [UInt8] {
        let source = FileManager.default.temporaryDirectory.appendingPathComponent("guest-user-source-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: source) }
        try Data("print('version 1')\n".utf8).write(to: source.appendingPathComponent("app.py"))
        let archive = source.appendingPathComponent("release.tar").path
        try runTool("tar", ["-cf", archive, "app.py"], in: source)
        return Array(try Data(contentsOf: URL(fileURLWithPath: archive)))
    }

    private static func read(_ path: String) throws -> String {
        try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
