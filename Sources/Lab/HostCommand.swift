import Foundation
import ProgramRunner

/// A failed external command, with what it printed so the operator sees the real reason.
public struct LabCommandError: Error, CustomStringConvertible, Sendable {
    public let command: String
    public let status: Int32
    public let errorOutput: String

    public var description: String {
        let detail = errorOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        return "`\(command)` exited with status \(status)" + (detail.isEmpty ? "" : ": \(detail)")
    }
}

/// Runs short-lived external programs (the lab's shell scripts, `ip`) without blocking the
/// Swift concurrency pool.
enum HostCommand {
    /// Runs `executable` with `arguments` (never through a shell) and returns what it printed.
    static func run(_ executable: String, _ arguments: [String]) async throws -> LocalProgram.Result {
        try await LocalProgram.run(URL(fileURLWithPath: executable), arguments)
    }

    /// Like `run`, but a non-zero exit status is an error.
    @discardableResult
    static func check(_ executable: String, _ arguments: [String]) async throws -> String {
        let result = try await run(executable, arguments)
        guard result.status == 0 else {
            throw LabCommandError(
                command: ([executable] + arguments).joined(separator: " "),
                status: result.status, errorOutput: result.errorOutput)
        }
        return result.output
    }
}
