import Foundation
import XCTest

/// `flotctl logs search|backup` and `jobs list|show|watch|cancel` run as a program against
/// `flotilla serve` (issue 14 item 2): what they print, `--json`, and the exit codes.
final class ClientLogAndJobCommandsTests: XCTestCase {
    private static let shared = SharedServer()

    override class func tearDown() {
        shared.stop()
        super.tearDown()
    }

    private func json(_ run: ClientRun) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any], "\(run)")
    }

    func testLogsAreSearchedAndBackedUp() throws {
        let server = try Self.shared.server()
        let client = try ClientRunner()
        addTeardownBlock { client.remove() }
        try client.loginAsAdmin(server)

        let search = try client.run(["logs", "search", "--kind", "login"])
        XCTAssertEqual(search.status, 0, "\(search)")
        XCTAssertTrue(search.output.contains("TIME (UTC)") && search.output.contains("admin"), "\(search)")
        let found = try json(try client.run(["logs", "search", "--kind", "login", "--json"]))
        let kinds = (found["items"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }
        XCTAssertFalse(kinds.isEmpty)
        XCTAssertEqual(Set(kinds), ["login"], "\(found)")
        let badTime = try client.run(["logs", "search", "--from", "yesterday-ish"])
        XCTAssertEqual(badTime.status, 2, "the server's 400 is bad usage: \(badTime)")
        XCTAssertFalse(badTime.errors.isEmpty, "the server's message is printed")

        let backup = try client.run(["logs", "backup", "--kind", "login"])
        XCTAssertEqual(backup.status, 0, "\(backup)")
        XCTAssertNotNil(backup.output.range(of: #"Backed up [1-9]\d* entries to "#, options: .regularExpression), "\(backup)")
    }

    func testJobsAreListedShownWatchedAndAFinishedOneCannotBeCancelled() throws {
        let server = try Self.shared.server()
        let client = try ClientRunner()
        addTeardownBlock { client.remove() }
        try client.loginAsAdmin(server)
        XCTAssertEqual(try client.run(["env", "add", "jobs-env"]).status, 0)
        XCTAssertEqual(try client.run(["env", "delete", "jobs-env", "--follow"]).status, 0)

        let listed = try json(try client.run(["jobs", "list", "--status", "succeeded", "--json"]))
        let jobs = listed["items"] as? [[String: Any]] ?? []
        let jobID = try XCTUnwrap(jobs.first?["id"] as? String, "\(listed)")
        XCTAssertTrue(jobs.allSatisfy { $0["status"] as? String == "succeeded" }, "\(listed)")
        let table = try client.run(["jobs", "list"])
        XCTAssertEqual(table.status, 0, "\(table)")
        XCTAssertTrue(table.output.contains(jobID), "\(table)")

        let shown = try client.run(["jobs", "show", jobID, "--logs"])
        XCTAssertEqual(shown.status, 0, "\(shown)")
        XCTAssertTrue(shown.output.contains("succeeded"), "\(shown)")
        let watched = try client.run(["jobs", "watch", jobID])
        XCTAssertEqual(watched.status, 0, "a job that succeeded: \(watched)")
        XCTAssertTrue(watched.output.contains("job succeeded"), "\(watched)")

        let cancel = try client.run(["jobs", "cancel", jobID])
        XCTAssertEqual(cancel.status, 1, "a finished job is a conflict: \(cancel)")
        XCTAssertFalse(cancel.errors.isEmpty, "the server's message is printed: \(cancel)")
        XCTAssertEqual(try client.run(["jobs", "cancel", UUID().uuidString]).status, 4)
        XCTAssertEqual(try client.run(["jobs", "watch", "not-a-job"]).status, 2)
    }

    /// On a terminal `--follow` draws a bar, redrawn in place, up to 100 % (the README's walk);
    /// `script` (util-linux) gives flotctl a pseudo-terminal.
    func testFollowOnATerminalDrawsABarUpToOneHundredPercent() throws {
        let server = try Self.shared.server()
        let client = try ClientRunner()
        addTeardownBlock { client.remove() }
        try client.loginAsAdmin(server)
        XCTAssertEqual(try client.run(["env", "add", "bar-env"]).status, 0)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        process.arguments = ["-qec", "'\(try BuiltProgram.path("flotctl"))' env delete bar-env --yes --follow", "/dev/null"]
        process.environment = ProcessInfo.processInfo.environment.merging(["XDG_CONFIG_HOME": client.configHome]) { $1 }
        let outputPath = client.configHome + "/terminal-output"
        FileManager.default.createFile(atPath: outputPath, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: outputPath)
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let output = try String(contentsOfFile: outputPath, encoding: .utf8)
        XCTAssertEqual(process.terminationStatus, 0, output)
        XCTAssertTrue(output.contains("[" + String(repeating: "#", count: 30) + "] 100 %"), "the full bar: \(output)")
        XCTAssertTrue(output.contains("\u{1B}["), "redrawn in place with terminal control codes: \(output)")
        XCTAssertFalse(output.contains("progress: 100 %"), "no plain progress lines on a terminal: \(output)")
    }
}
