import Foundation
import ProgramRunner

/// Runs the repository clients (`git`, `svn`, `tar`) as argv through Foundation `Process`, never
/// through a shell, with a clean environment and a time limit, so that neither a repository URL
/// nor a revision can become shell code and a hung server cannot hold a rollout forever.
/// Untrusted repositories also get no inherited environment or configuration and no
/// interactive prompts.
enum RepositoryProcess {
    /// Runs the program `name` (looked up on `PATH`) with `arguments` in `directory`.
    /// `environment` adds to the clean environment (a credential header for Git); `input` is
    /// written to the client's standard input (a password for `svn --password-from-stdin`), so
    /// secrets never appear in a command line.
    static func run(
        _ name: String, _ arguments: [String], in directory: URL, timeout: Duration = .seconds(120),
        environment extra: [String: String] = [:], input: Data? = nil
    ) async throws -> LocalProgram.Result {
        guard let executable = LocalProgram.locate(name) else { throw RepositoryError.clientMissing(name) }
        do {
            return try await LocalProgram.run(
                executable, arguments, in: directory, environment: environment(home: directory).merging(extra) { _, added in added },
                input: input, timeout: timeout)
        } catch is LocalProgram.TimedOut {
            throw RepositoryError.timedOut(name)
        }
    }

    /// Like `run`, but a non-zero exit status is a `RepositoryError` naming `what` failed.
    @discardableResult
    static func check(
        _ name: String, _ arguments: [String], in directory: URL, failure what: String,
        timeout: Duration = .seconds(120), environment extra: [String: String] = [:], input: Data? = nil
    ) async throws -> String {
        let result = try await run(name, arguments, in: directory, timeout: timeout, environment: extra, input: input)
        guard result.status == 0 else {
            throw RepositoryError.commandFailed(what, detail: lastLine(of: result.errorOutput))
        }
        return result.output
    }

    /// The environment every repository client gets: nothing inherited but `PATH`, a private
    /// `HOME` (no user configuration or credential helpers), no prompts, no system git config.
    static func environment(home: URL) -> [String: String] {
        [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "HOME": home.path,
            "LC_ALL": "C",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_ASKPASS": "/bin/false",
            "SSH_ASKPASS": "/bin/false",
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
        ]
    }

    private static func lastLine(of text: String) -> String {
        text.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
    }
}
