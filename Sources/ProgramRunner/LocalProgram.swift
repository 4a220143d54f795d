import Foundation

/// Runs a program on the platform's own machine (a repository client, the dependency checker,
/// the lab's scripts): argv only, never through a shell; on a thread of its own, so the Swift concurrency pool never
/// waits on it; both output pipes read to the end, so a chatty program cannot block on a full
/// pipe; killed when its time is up, so a hung program cannot hold a job forever.
public enum LocalProgram {
    public struct Result: Sendable {
        public var status: Int32
        public var output: String
        public var errorOutput: String
    }

    /// The program did not finish within its time and was killed.
    public struct TimedOut: Error {}

    /// The executable `name` on the server's `PATH`, if there is one.
    public static func locate(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { URL(fileURLWithPath: String($0)).appendingPathComponent(name) }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// Runs `executable` with exactly `environment` (nil: the server's own); `input`, if any, is
    /// written to its standard input (secrets travel there, never in a command line); with no
    /// `timeout` it may run as long as it needs (the lab's own scripts).
    public static func run(
        _ executable: URL, _ arguments: [String], in directory: URL? = nil, environment: [String: String]? = nil,
        input: Data? = nil, timeout: Duration? = nil
    ) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    with: Swift.Result {
                        try runBlocking(executable, arguments, in: directory, environment: environment, input: input, timeout: timeout)
                    })
            }
        }
    }

    private static func runBlocking(
        _ executable: URL, _ arguments: [String], in directory: URL?, environment: [String: String]?, input: Data?,
        timeout: Duration?
    ) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        if let environment { process.environment = environment }
        let inputPipe = input.map { _ in Pipe() }
        process.standardInput = inputPipe ?? FileHandle.nullDevice
        let output = Pipe()
        let errorOutput = Pipe()
        process.standardOutput = output
        process.standardError = errorOutput
        try process.run()
        // SIGKILL, not SIGTERM: a child inherits an ignored SIGTERM from a server that ignores it.
        let deadline = DispatchWorkItem { [process] in
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        if let timeout {
            let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: deadline)
        }
        if let inputPipe, let input {
            try? inputPipe.fileHandleForWriting.write(contentsOf: input)
            try? inputPipe.fileHandleForWriting.close()
        }
        let errorReader = PipeReader(errorOutput.fileHandleForReading)
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        deadline.cancel()
        if timeout != nil, process.terminationReason == .uncaughtSignal { throw TimedOut() }
        return Result(
            status: process.terminationStatus,
            output: String(decoding: outputData, as: UTF8.self),
            errorOutput: String(decoding: errorReader.finish(), as: UTF8.self))
    }
}

/// Reads a pipe to its end on its own thread.
private final class PipeReader: @unchecked Sendable {
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
