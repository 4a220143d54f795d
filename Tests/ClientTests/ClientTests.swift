import Foundation
import XCTest

/// `flotctl` run as a program against `flotilla serve` (issue 14, item 2): what it keeps, what
/// it does through the API, and the exit codes and messages scripts rely on.
final class ClientTests: XCTestCase {
    /// One server for the class: starting one costs seconds (migrations) and every test needs one.
    private static let shared = SharedServer()

    override class func tearDown() {
        shared.stop()
        super.tearDown()
    }

    private func server() throws -> RunningServer { try Self.shared.server() }

    private func newClient() throws -> ClientRunner {
        let client = try ClientRunner()
        addTeardownBlock { client.remove() }
        return client
    }

    func testLoginKeepsATokenOnlyItsOwnerMayReadAndLogoutOrANewLoginRevokesIt() throws {
        let server = try server()
        let client = try newClient()
        try client.loginAsAdmin(server)

        var status = stat()
        XCTAssertEqual(stat(client.loginFile, &status), 0)
        XCTAssertEqual(status.st_mode & 0o777, 0o600, "the login file is the user's alone")
        XCTAssertEqual(stat(client.configHome + "/flotilla", &status), 0)
        XCTAssertEqual(status.st_mode & 0o777, 0o700)
        let stored = try String(contentsOfFile: client.loginFile, encoding: .utf8)
        XCTAssertFalse(stored.contains(RunningServer.adminPassword), "the password is never stored")
        let token = try client.storedToken()
        XCTAssertTrue(token.hasPrefix("flt_"), stored)
        XCTAssertEqual(try client.run(["env", "list"]).status, 0)

        XCTAssertEqual(chmod(client.loginFile, 0o644), 0)
        let exposed = try client.run(["env", "list"])
        XCTAssertEqual(exposed.status, 1, "\(exposed)")
        XCTAssertTrue(exposed.errors.contains("others may read it"), "\(exposed)")
        XCTAssertEqual(chmod(client.loginFile, 0o600), 0)

        let probe = try newClient()
        try client.loginAsAdmin(server)
        let replacement = try client.storedToken()
        XCTAssertNotEqual(replacement, token)
        let replaced = try probe.run(["env", "list"], withToken: token, of: server)
        XCTAssertEqual(replaced.status, 3, "a new login revokes the token it replaces: \(replaced)")

        let logout = try client.run(["logout"])
        XCTAssertEqual(logout.status, 0, "\(logout)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: client.loginFile))
        let revoked = try probe.run(["env", "list"], withToken: replacement, of: server)
        XCTAssertEqual(revoked.status, 3, "logout revokes the token on the server: \(revoked)")
    }

    func testEnvironmentsAndUsersThroughTheClient() throws {
        let server = try server()
        let client = try newClient()
        try client.loginAsAdmin(server)

        let added = try client.run(["env", "add", "cli-env", "--description", "made by flotctl"])
        XCTAssertEqual(added.status, 0, "\(added)")
        let list = try client.run(["env", "list"])
        XCTAssertEqual(list.status, 0, "\(list)")
        XCTAssertTrue(list.output.contains("cli-env") && list.output.contains("made by flotctl"), "\(list)")
        let listJSON = try client.run(["env", "list", "--json"])
        let page = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listJSON.output.utf8)) as? [String: Any], "\(listJSON)")
        let names = (page["items"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        XCTAssertTrue(names.contains("cli-env"), "\(listJSON)")
        let show = try client.run(["env", "show", "cli-env", "--json"])
        let environment = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(show.output.utf8)) as? [String: Any], "\(show)")
        XCTAssertEqual(environment["description"] as? String, "made by flotctl")
        XCTAssertEqual((environment["vms"] as? [Any])?.count, 0)

        let deleted = try client.run(["env", "delete", "cli-env", "--follow"])
        XCTAssertEqual(deleted.status, 0, "\(deleted)")
        XCTAssertTrue(deleted.output.contains("progress: 100 %") && deleted.output.contains("job succeeded"), "\(deleted)")
        XCTAssertEqual(try client.run(["env", "show", "cli-env"]).status, 4)

        let user = try client.run(["users", "add", "carol", "--role", "ordinary", "--password-stdin"], input: "Carol-pass-2026\n")
        XCTAssertEqual(user.status, 0, "\(user)")
        let users = try client.run(["users", "list"])
        XCTAssertTrue(users.output.split(separator: "\n").contains { $0.hasPrefix("carol ") && $0.contains("ordinary") }, "\(users)")
        let promoted = try client.run(["users", "edit", "carol", "--role", "system", "--json"])
        XCTAssertEqual(
            (try JSONSerialization.jsonObject(with: Data(promoted.output.utf8)) as? [String: Any])?["role"] as? String, "system",
            "\(promoted)")
        let removed = try client.run(["users", "delete", "carol"])
        XCTAssertEqual(removed.status, 0, "\(removed)")
        XCTAssertFalse(try client.run(["users", "list"]).output.contains("carol"))
    }

    func testExitCodesSayWhatHappenedWithTheServersMessage() throws {
        let server = try server()
        let stranger = try newClient()
        let notLoggedIn = try stranger.run(["env", "list"])
        XCTAssertEqual(notLoggedIn.status, 3, "\(notLoggedIn)")
        XCTAssertTrue(notLoggedIn.errors.contains("flotctl login"), "\(notLoggedIn)")

        let closedPort = try freeLoopbackPort()
        let started = Date()
        let unreachable = try stranger.run(["login", "http://127.0.0.1:\(closedPort)", "-u", "admin", "--password-stdin"], input: "x\n")
        XCTAssertEqual(unreachable.status, 1, "\(unreachable)")
        XCTAssertTrue(unreachable.errors.contains("cannot reach http://127.0.0.1:\(closedPort)"), "\(unreachable)")
        XCTAssertLessThan(
            Date().timeIntervalSince(started), 5, "a refused connection is reported at once, not retried until the 10 s timeout")

        let wrongPassword = try stranger.run(["login", server.url, "--username", "admin", "--password-stdin"], input: "not-the-password\n")
        XCTAssertEqual(wrongPassword.status, 3, "\(wrongPassword)")
        XCTAssertTrue(wrongPassword.errors.contains("wrong user name or password"), "the server's message: \(wrongPassword)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: stranger.loginFile))

        let admin = try newClient()
        try admin.loginAsAdmin(server)
        let missing = try admin.run(["env", "show", "no-such-env"])
        XCTAssertEqual(missing.status, 4, "\(missing)")
        let missingJob = try admin.run(["jobs", "show", UUID().uuidString])
        XCTAssertEqual(missingJob.status, 4, "\(missingJob)")
        XCTAssertFalse(missingJob.errors.isEmpty)
        for badUsage in [["env", "add"], ["jobs", "show", "not-a-uuid"], ["frobnicate"], ["env", "power", "sideways", "x"]] {
            let run = try admin.run(badUsage)
            XCTAssertEqual(run.status, 2, "\(badUsage): \(run)")
        }
        let shortPassword = try admin.run(["users", "add", "dave", "--role", "ordinary", "--password-stdin"], input: "short\n")
        XCTAssertEqual(shortPassword.status, 2, "input the server rejects: \(shortPassword)")
        XCTAssertTrue(shortPassword.errors.contains("password"), "the server's message: \(shortPassword)")
        XCTAssertEqual(try admin.run(["env", "add", "twice"]).status, 0)
        let conflict = try admin.run(["env", "add", "twice"])
        XCTAssertEqual(conflict.status, 1, "\(conflict)")
        XCTAssertTrue(conflict.errors.contains("twice"), "the server's message: \(conflict)")

        XCTAssertEqual(
            try admin.run(["users", "add", "erin", "--role", "ordinary", "--password-stdin"], input: "Erin-pass-2026\n").status, 0)
        let ordinary = try newClient()
        XCTAssertEqual(try ordinary.run(["login", server.url, "-u", "erin", "--password-stdin"], input: "Erin-pass-2026\n").status, 0)
        XCTAssertEqual(try ordinary.run(["env", "list"]).status, 0, "ordinary administrators view environments")
        let forbidden = try ordinary.run(["env", "add", "not-allowed"])
        XCTAssertEqual(forbidden.status, 3, "\(forbidden)")
        XCTAssertFalse(forbidden.errors.isEmpty)
    }
    func testAnHTTPSServerIsTrustedThroughTheGivenCertificateAuthorityOnly() throws {
        let server = try server()
        let folder = try temporaryFolder("flotctl-tls")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: folder) }
        try makeCertificates(in: folder)
        let port = try freeLoopbackPort()
        let relay = Process()
        relay.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("tls_relay.py").path
        relay.arguments = [script, String(port), server.url, folder + "/server.pem", folder + "/server.key"]
        try relay.run()
        addTeardownBlock {
            relay.terminate()
            relay.waitUntilExit()
        }
        try waitForListener(relay, port: port) { "the TLS relay did not listen on port \(port)" }
        let url = "https://127.0.0.1:\(port)"
        let client = try newClient()

        let untrusted = try client.run(["login", url, "-u", "admin", "--password-stdin"], input: RunningServer.adminPassword + "\n")
        XCTAssertEqual(untrusted.status, 1, "\(untrusted)")
        XCTAssertTrue(untrusted.errors.contains("CERTIFICATE_VERIFY_FAILED"), "\(untrusted)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: client.loginFile))

        let trusted = try client.run(
            ["login", url, "-u", "admin", "--password-stdin", "--ca-file", folder + "/ca.pem"], input: RunningServer.adminPassword + "\n")
        XCTAssertEqual(trusted.status, 0, "\(trusted)")
        XCTAssertEqual(try client.run(["env", "list"]).status, 0, "later commands trust the same authority")
        XCTAssertEqual(try client.run(["logout"]).status, 0)
    }

    /// A private certificate authority and a certificate it signed for 127.0.0.1.
    private func makeCertificates(in folder: String) throws {
        let commands = [
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                "-days", "2", "-subj", "/CN=Flotilla test CA",
            ],
            [
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out", "server.csr",
                "-subj", "/CN=127.0.0.1",
            ],
            [
                "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem",
                "-days", "2", "-extfile", "san.cnf",
            ],
        ]
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: folder + "/san.cnf", atomically: true, encoding: .utf8)
        for arguments in commands {
            let openssl = Process()
            openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            openssl.arguments = arguments
            openssl.currentDirectoryURL = URL(fileURLWithPath: folder)
            openssl.standardError = FileHandle.nullDevice
            try openssl.run()
            openssl.waitUntilExit()
            guard openssl.terminationStatus == 0 else { throw HarnessError("openssl \(arguments.joined(separator: " ")) failed") }
        }
    }
}

/// The class's one server, started by the first test that needs it.
final class SharedServer: @unchecked Sendable {
    private let lock = NSLock()
    private var running: RunningServer?

    func server() throws -> RunningServer {
        try lock.withLock {
            if let running { return running }
            let started = try RunningServer()
            running = started
            return started
        }
    }

    func stop() {
        lock.withLock {
            running?.stop()
            running = nil
        }
    }
}
