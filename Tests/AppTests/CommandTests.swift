import ConsoleKit
import Fluent
import XCTVapor

@testable import App

/// The commands run through Vapor's console exactly as `flotilla user …` and `flotilla logs …` do.
final class CommandTests: XCTestCase {
    private func run(_ app: Application, _ arguments: [String]) async throws -> String {
        let console = TestConsole()
        var context = CommandContext(console: console, input: CommandInput(arguments: ["flotilla"] + arguments))
        context.application = app
        try await console.run(app.asyncCommands.group(), with: context)
        return console.output
    }

    func testUserAndLogCommands() async throws {
        try await TestApp.run { app in
            let console = TestConsole()
            console.answers = ["cli-password-1", "cli-password-1"]
            var context = CommandContext(
                console: console, input: CommandInput(arguments: ["flotilla", "user", "add", "carol", "--role", "system"]))
            context.application = app
            try await console.run(app.asyncCommands.group(), with: context)
            XCTAssertTrue(console.output.contains("Added carol"))
            try await TestClient(app).signIn("carol", "cli-password-1")

            console.answers = ["short", "short"]
            context = CommandContext(console: console, input: CommandInput(arguments: ["flotilla", "user", "add", "dave"]))
            context.application = app
            do {
                try await console.run(app.asyncCommands.group(), with: context)
                XCTFail("a short password is refused")
            } catch let error as FlotillaError {
                XCTAssertTrue(error.message.contains("at least 8"))
            }

            console.answers = ["carol-new-pass", "carol-new-pass"]
            context = CommandContext(console: console, input: CommandInput(arguments: ["flotilla", "user", "passwd", "carol"]))
            context.application = app
            try await console.run(app.asyncCommands.group(), with: context)
            try await TestClient(app).signIn("carol", "carol-new-pass")

            let listing = try await run(app, ["user", "list"])
            XCTAssertTrue(listing.contains("admin\tsystem"))
            XCTAssertTrue(listing.contains("carol\tsystem"))

            let backup = try await run(app, ["logs", "backup", "--query", "kind=login"])
            XCTAssertTrue(backup.contains("Wrote 2 entries"), backup)
            let files = try LogBackup(directory: app.flotilla.config.backupDirectory, displayTime: DisplayTime(timeZone: .gmt)).list()
            XCTAssertEqual(files.count, 1)
            let entries = try await LogEntry.query(on: app.db).filter(\.$operatorName == "cli").sort(\.$id).all()
            XCTAssertEqual(
                entries.map { "\($0.action) \($0.result)" },
                ["user.add success", "user.add failure", "user.edit success", "logs.backup success"])
        }
    }
}

/// A console that records output and answers prompts from a list.
final class TestConsole: Console, @unchecked Sendable {
    var output = ""
    var answers: [String] = []
    var userInfo: [AnySendableHashable: any Sendable] = [:]
    var size: (width: Int, height: Int) { (80, 24) }

    func input(isSecure: Bool) -> String { answers.isEmpty ? "" : answers.removeFirst() }
    func output(_ text: ConsoleText, newLine: Bool) { output += text.description + (newLine ? "\n" : "") }
    func report(error: String, newLine: Bool) { output += error + (newLine ? "\n" : "") }
    func clear(_ type: ConsoleClear) {}
}
