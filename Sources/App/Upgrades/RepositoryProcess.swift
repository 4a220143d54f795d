import Foundation

/// Runs the repository clients (`git`, `svn`, `tar`) as argv through Foundation `Process`, never
/// through a shell, with a clean environment and a time limit, so that neither a repository URL
/// nor a revision can become shell code and a hung server cannot hold a rollout forever.
///
/// Lab's `HostCommand` runs the lab's own scripts; this one adds what untrusted repositories
/// need: no inherited environment or configuration, no interactive prompts, a deadline.
enum RepositoryProcess {
    struct Result: Sendable {
        var status: Int32
        var output: String
        var errorOutput: String
    }

    /// Runs the program `name` (looked up on `PATH`) with `arguments` in `directory`.
    /// `environment` adds to the clean environment (a credential header for Git); `input` is
    /// written to the client's standard input (a password for `svn --password-from-stdin`), so
    /// secrets never appear in a command line.
    static func run(
        _ name: String, _ arguments: [String], in directory: URL, timeout: Duration = .seconds(120),
        environment extra: [String: String] = [:], input: Data? = nil
    ) async throws -> Result {
        let executable = try locate(name)
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    with: Swift.Result {
                        try runBlocking(executable, arguments, in: directory, timeout: timeout, environment: extra, input: input)
                    })
            }
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

    private static func locate(_ name: String) throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) {
                return candidate
            }
        }
        throw RepositoryError.clientMissing(name)
    }

    private static func lastLine(of text: String) -> String {
        text.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
    }

    private static func runBlocking(
        _ executable: URL, _ arguments: [String], in directory: URL, timeout: Duration, environment extra: [String: String],
        input: Data?
    ) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.environment = environment(home: directory).merging(extra) { _, added in added }
        let inputPipe = input.map { _ in Pipe() }
        process.standardInput = inputPipe ?? FileHandle.nullDevice
        let output = Pipe()
        let errorOutput = Pipe()
        process.standardOutput = output
        process.standardError = errorOutput
        try process.run()
        if let inputPipe, let input {
            try? inputPipe.fileHandleForWriting.write(contentsOf: input)
            try? inputPipe.fileHandleForWriting.close()
        }
        // SIGKILL, not SIGTERM: a child inherits an ignored SIGTERM from a server that ignores it.
        let deadline = DispatchWorkItem { [process] in
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: deadline)
        // Read both pipes to the end before waiting, so a chatty client cannot block on a full pipe.
        let errorReader = PipeReader(errorOutput.fileHandleForReading)
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        deadline.cancel()
        if process.terminationReason == .uncaughtSignal {
            throw RepositoryError.timedOut(executable.lastPathComponent)
        }
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
