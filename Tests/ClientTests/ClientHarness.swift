import Foundation
import XCTest

/// The programs `swift build --build-tests` built beside the test bundle; nothing is built here.
enum BuiltProgram {
    static func path(_ name: String) throws -> String {
        let candidates = [
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent(name).path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/debug/\(name)").path,
        ]
        guard let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw HarnessError("no built \(name) program in \(candidates); `swift build --build-tests` builds it")
        }
        return found
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A new folder under the system's temporary folder; its owner removes it.
func temporaryFolder(_ prefix: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// `flotilla serve` started on a free loopback port with a fresh SQLite database in a
/// temporary folder, and the first administrator's password chosen.
final class RunningServer: @unchecked Sendable {
    static let adminPassword = "Admin-pass-2026"

    let url: String
    let folder: String
    private let process: Process

    init() throws {
        folder = try temporaryFolder("flotctl-server")
        let port = try freeLoopbackPort()
        url = "http://127.0.0.1:\(port)"
        process = Process()
        process.executableURL = URL(fileURLWithPath: try BuiltProgram.path("flotilla"))
        process.arguments = ["serve"]
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("FLOTILLA_") }
        environment["FLOTILLA_DATA_DIR"] = folder + "/data"
        environment["FLOTILLA_PORT"] = String(port)
        environment["FLOTILLA_ADMIN_PASSWORD"] = Self.adminPassword
        environment["FLOTILLA_SYNC_SECONDS"] = "0"
        environment["FLOTILLA_GUEST_BOOT_SECONDS"] = "60"
        process.environment = environment
        FileManager.default.createFile(atPath: folder + "/server.log", contents: nil)
        let log = FileHandle(forWritingAtPath: folder + "/server.log")
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try waitUntilListening(port: port)
    }

    var log: String { (try? String(contentsOfFile: folder + "/server.log", encoding: .utf8)) ?? "" }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func waitUntilListening(port: Int) throws {
        try waitForListener(process, port: port) { "flotilla serve did not listen on port \(port); it printed:\n\(log)" }
    }
}

/// One `flotctl` run: its exit code and what it printed.
struct ClientRun: CustomStringConvertible {
    var status: Int32
    var output: String
    var errors: String

    var description: String { "exit \(status)\nstdout:\n\(output)\nstderr:\n\(errors)" }
}

/// Runs the built `flotctl` with its own config folder (`XDG_CONFIG_HOME`), standard input
/// from `input` (never a terminal, as in a script), and a time limit.
struct ClientRunner {
    let configHome: String

    init() throws {
        configHome = try temporaryFolder("flotctl-config")
    }

    var loginFile: String { configHome + "/flotilla/client.json" }

    func run(_ arguments: [String], input: String? = nil, timeout: TimeInterval = 60) throws -> ClientRun {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try BuiltProgram.path("flotctl"))
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_CONFIG_HOME"] = configHome
        process.environment = environment
        let outputPath = configHome + "/stdout-\(UUID().uuidString)"
        let errorPath = configHome + "/stderr-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: outputPath, contents: nil)
        FileManager.default.createFile(atPath: errorPath, contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: outputPath)
            try? FileManager.default.removeItem(atPath: errorPath)
        }
        process.standardOutput = FileHandle(forWritingAtPath: outputPath)
        process.standardError = FileHandle(forWritingAtPath: errorPath)
        let stdin = Pipe()
        process.standardInput = stdin
        try process.run()
        stdin.fileHandleForWriting.write(Data((input ?? "").utf8))
        try stdin.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                process.terminate()
                process.waitUntilExit()
                throw HarnessError("flotctl \(arguments.joined(separator: " ")) ran longer than \(timeout) s")
            }
            usleep(20_000)
        }
        return ClientRun(
            status: process.terminationStatus,
            output: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "",
            errors: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "")
    }

    /// Runs with a login file made by hand around `token` (removed afterwards), to show what
    /// the server makes of a token the client no longer keeps.
    func run(_ arguments: [String], withToken token: String, of server: RunningServer) throws -> ClientRun {
        let login = try JSONSerialization.data(withJSONObject: ["server": server.url, "username": "admin", "token": token])
        try FileManager.default.createDirectory(
            atPath: configHome + "/flotilla", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard FileManager.default.createFile(atPath: loginFile, contents: login, attributes: [.posixPermissions: 0o600]) else {
            throw HarnessError("cannot write \(loginFile)")
        }
        defer { try? FileManager.default.removeItem(atPath: loginFile) }
        return try run(arguments)
    }

    /// Logs in as the administrator, asserting it worked.
    func loginAsAdmin(_ server: RunningServer, file: StaticString = #filePath, line: UInt = #line) throws {
        let login = try run(["login", server.url, "--username", "admin", "--password-stdin"], input: RunningServer.adminPassword + "\n")
        XCTAssertEqual(login.status, 0, "\(login)", file: file, line: line)
    }

    /// The API token `login` stored, for the test's own setup calls.
    func storedToken() throws -> String {
        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: loginFile))) as? [String: Any]
        guard let token = stored?["token"] as? String else { throw HarnessError("no token in \(loginFile)") }
        return token
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: configHome)
    }
}

func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = loopback(port: 0)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
        }
    }
    guard bound else { throw HarnessError("no free loopback port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Waits up to 60 s for a started program to accept connections on a loopback port.
func waitForListener(_ process: Process, port: Int, failure: () -> String) throws {
    let deadline = Date().addingTimeInterval(60)
    while !canConnect(port: port) {
        guard process.isRunning, Date() < deadline else { throw HarnessError(failure()) }
        usleep(100_000)
    }
}

func canConnect(port: Int) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = loopback(port: port)
    return withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}

private func loopback(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
    address.sin_port = UInt16(port).bigEndian
    return address
}
