import Foundation

/// The outcome of a finished external command.
struct CommandResult: Sendable {
    var status: Int32
    var output: String
    var errorOutput: String
}

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
/// Swift concurrency pool: the wait happens on a dedicated thread.
enum HostCommand {
    /// Runs `executable` with `arguments` (never through a shell) and returns what it printed.
    static func run(_ executable: String, _ arguments: [String]) async throws -> CommandResult {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try runBlocking(executable, arguments) })
            }
        }
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

    private static func runBlocking(_ executable: String, _ arguments: [String]) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let output = Pipe()
        let errorOutput = Pipe()
        process.standardOutput = output
        process.standardError = errorOutput
        try process.run()
        // Read both pipes to the end before waiting, so a chatty command cannot block on a full pipe.
        let errorData = ErrorCollector(errorOutput.fileHandleForReading)
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CommandResult(
            status: process.terminationStatus,
            output: String(decoding: outputData, as: UTF8.self),
            errorOutput: String(decoding: errorData.finish(), as: UTF8.self))
    }
}

/// Reads a pipe to its end on its own thread.
private final class ErrorCollector: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var data = Data()

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }
    }

    func finish() -> Data {
        done.wait()
        return data
    }
}
