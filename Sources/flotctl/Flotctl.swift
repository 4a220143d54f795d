import ArgumentParser
import Foundation

/// `flotctl`: Flotilla's command-line client. It works on a running server through the REST
/// API with a personal API token, like the web pages do, so it needs no database access and
/// runs on any machine that reaches the server. It is its own small program (no web framework
/// inside) and not a command group of `flotilla`, which links the whole server and works on
/// the database directly.
@main
struct Flotctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flotctl",
        abstract: "Flotilla's command-line client on the REST API.",
        discussion: """
            Start with `flotctl login URL`. Commands that start a job print its ID, or follow it to the \
            end with --follow. --json prints the server's JSON.
            Exit codes: 0 done, 1 failed (a job failed, a server or connection error), 2 bad usage \
            (also input the server rejects as invalid), 3 refused (not signed in or not allowed), \
            4 not found.
            """,
        subcommands: [
            Login.self, Logout.self, EnvironmentCommands.self, VMCommands.self, Deploy.self, JobCommands.self,
            LogCommands.self, UserCommands.self, UpgradeCommands.self, ConfigurationCommands.self,
            MonitorCommands.self,
        ]
    )

    /// Parses and runs a command, and ends with the exit code that says what happened.
    static func main() async {
        let code: Int32
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            code = 0
        } catch let failure as ClientFailure {
            Terminal.printError("flotctl: \(failure.message)")
            code = failure.outcome.rawValue
        } catch {
            let parserCode = exitCode(for: error)
            let message = fullMessage(for: error)
            if parserCode == .success {
                if !message.isEmpty { print(message) }
                code = 0
            } else if parserCode == .validationFailure {
                Terminal.printError(message)
                code = ClientFailure.Outcome.badUsage.rawValue
            } else {
                Terminal.printError("flotctl: \(message.isEmpty ? String(describing: error) : message)")
                code = ClientFailure.Outcome.failed.rawValue
            }
        }
        Self.exit(withError: code == 0 ? nil : ExitCode(code))
    }
}

/// Options every command that talks to the server takes.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print the server's JSON answer instead of text.") var json = false
}
