import Foundation

/// Runs the dependency checker on the platform's own machine: argv only (no shell), the input
/// (which holds the checks' passwords) on standard input, killed when the time limit passes.
enum LocalChecker {
    struct Answer: Sendable {
        var status: Int32
        var output: String
        var errorOutput: String
    }

    /// Runs `argv` (its first word looked up on `PATH`) with `standardInput`.
    static func run(_ argv: [String], standardInput: [UInt8], timeout: Duration) async throws -> Answer {
        guard let name = argv.first else { throw FlotillaError(.unavailable, "no program to run") }
        let executable = try locate(name)
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    with: Result { try runBlocking(executable, Array(argv.dropFirst()), standardInput: standardInput, timeout: timeout) })
            }
        }
    }

    private static func locate(_ name: String) throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw FlotillaError(.unavailable, "\(name) is not installed on the platform's machine")
    }

    private static func runBlocking(_ executable: URL, _ arguments: [String], standardInput: [UInt8], timeout: Duration) throws -> Answer {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "LC_ALL": "C.UTF-8"]
        let input = Pipe()
        let output = Pipe()
        let errorOutput = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errorOutput
        try process.run()
        let deadline = DispatchWorkItem { [process] in
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: deadline)
        // The input is a few kilobytes, below a pipe's buffer: written whole before reading.
        input.fileHandleForWriting.write(Data(standardInput))
        try? input.fileHandleForWriting.close()
        let errors = ErrorReader(errorOutput.fileHandleForReading)
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        deadline.cancel()
        if process.terminationReason == .uncaughtSignal {
            throw FlotillaError(.unavailable, "the checker did not finish within \(timeout)")
        }
        return Answer(
            status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
            errorOutput: String(decoding: errors.finish(), as: UTF8.self))
    }
}

/// Reads standard error on its own thread, so a chatty checker cannot block on a full pipe.
private final class ErrorReader: @unchecked Sendable {
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
