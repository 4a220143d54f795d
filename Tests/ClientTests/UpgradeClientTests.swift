import Foundation
import XCTest

/// `flotctl upgrades …` run as a program against `flotilla serve` (issue 12): the hooks'
/// secret printed once and never listed, and clear errors with the documented exit codes.
/// Rollouts themselves need guests and are followed in the lab (UpgradeLabTests).
final class UpgradeClientTests: XCTestCase {
    private static let shared = SharedServer()

    override class func tearDown() {
        shared.stop()
        super.tearDown()
    }

    func testHooksThroughTheClientShowTheirSecretOnce() throws {
        let server = try Self.shared.server()
        let client = try ClientRunner()
        addTeardownBlock { client.remove() }
        try client.loginAsAdmin(server)

        let added = try client.run(["upgrades", "hooks", "add", "gitea", "git://10.77.0.1/web.git"])
        XCTAssertEqual(added.status, 0, "\(added)")
        let secretLine = try XCTUnwrap(added.output.split(separator: "\n").first { $0.hasPrefix("secret (shown only now): ") })
        let secret = String(secretLine.dropFirst("secret (shown only now): ".count))
        XCTAssertGreaterThan(secret.count, 30, "\(added)")
        let id = try XCTUnwrap(added.output.split(separator: " ").dropFirst().first.map { String($0.dropLast()) })
        XCTAssertTrue(added.output.contains("\(server.url)/api/v1/hooks/gitea/\(id.lowercased())"), "\(added)")

        let listed = try client.run(["upgrades", "hooks"])
        XCTAssertEqual(listed.status, 0, "\(listed)")
        XCTAssertTrue(listed.output.contains(id), "\(listed)")
        XCTAssertFalse(listed.output.contains(secret), "never shown again: \(listed)")
        let json = try client.run(["upgrades", "hooks", "list", "--json"])
        XCTAssertEqual(json.status, 0, "\(json)")
        XCTAssertFalse(json.output.contains(secret), "never shown again: \(json)")

        let svn = try client.run(["upgrades", "hooks", "add", "svn", "svn://10.77.0.1/web"])
        XCTAssertEqual(svn.status, 0, "\(svn)")
        XCTAssertTrue(svn.output.contains("X-Flotilla-Token: "), "the post-commit line with its token: \(svn)")

        let badSender = try client.run(["upgrades", "hooks", "add", "bitbucket", "git://10.77.0.1/web.git"])
        XCTAssertEqual(badSender.status, 2, "\(badSender)")
        XCTAssertTrue(badSender.errors.contains("the sender is one of"), "\(badSender)")

        let deleted = try client.run(["upgrades", "hooks", "delete", id])
        XCTAssertEqual(deleted.status, 0, "\(deleted)")
        let again = try client.run(["upgrades", "hooks", "delete", id])
        XCTAssertEqual(again.status, 4, "\(again)")
        let after = try client.run(["upgrades", "hooks"])
        XCTAssertFalse(after.output.contains(id), "\(after)")
    }

    func testRolloutsWithoutAnApplicationAreClearErrors() throws {
        let server = try Self.shared.server()
        let client = try ClientRunner()
        addTeardownBlock { client.remove() }
        try client.loginAsAdmin(server)

        let applications = try client.run(["upgrades", "applications"])
        XCTAssertEqual(applications.status, 0, "\(applications)")
        let start = try client.run(["upgrades", "start", "staging", "v1", "--follow"])
        XCTAssertEqual(start.status, 2, "\(start)")
        XCTAssertTrue(start.errors.contains("no role has an application"), "\(start)")
        let named = try client.run(["upgrades", "rollback", "staging", "--role", "web"])
        XCTAssertEqual(named.status, 4, "\(named)")
        XCTAssertTrue(named.errors.contains("role 'web' has no application"), "\(named)")
    }
}
