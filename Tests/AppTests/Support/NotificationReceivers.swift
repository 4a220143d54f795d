import Foundation
import NIOConcurrencyHelpers
import Vapor
import XCTest

/// A real SMTP server for the notification tests: aiosmtpd run by the Mail tests' script
/// (`Tests/MailTests/smtp_test_server.py`: STARTTLS with a trustme CA, AUTH PLAIN/LOGIN) on
/// 127.0.0.1 and a chosen port, so a test can start it after the app was told where it is.
/// Needs python3 with aiosmtpd and trustme (scripts/pip-packages.txt); without them `start`
/// throws, so the tests fail rather than skip.
final class NotificationSMTPServer: @unchecked Sendable {
    static let user = "notifier"
    static let password = "correct horse battery staple"

    let port: Int
    let directory: URL
    private var process: Process?

    var certificateAuthorityFile: String { directory.appendingPathComponent("ca.pem").path }

    init(port: Int? = nil) throws {
        self.port = try port ?? freeLoopbackPort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("notify-smtpd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Starts the server and waits until it listens. `starttls` also requires AUTH (after STARTTLS).
    func start(starttls: Bool) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("MailTests/smtp_test_server.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var arguments = ["python3", script, "--directory", directory.path, "--port", "\(port)"]
        arguments += starttls ? ["--security", "starttls", "--user", Self.user, "--password", Self.password] : ["--security", "none"]
        process.arguments = arguments
        let log = directory.appendingPathComponent("server.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = process.standardOutput
        process.standardInput = FileHandle.nullDevice
        try FileManager.default.removeItem(at: directory.appendingPathComponent("ready"), ifExists: true)
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("ready").path) { return }
            guard process.isRunning else { break }
            usleep(20_000)
        }
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        stop()
        throw NotificationTestError("the SMTP test server did not start: \(output)")
    }

    func stop() {
        guard let process else { return }
        self.process = nil
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    struct Message: Decodable {
        var rcpt_tos: [String]
        var from: String
        var to: String
        var subject: String
        var body: String?
        var authenticated: Bool
        var tls: Bool
    }

    /// What the server received, in order.
    func messages() throws -> [Message] {
        var messages: [Message] = []
        while let json = try? Data(contentsOf: directory.appendingPathComponent("message-\(messages.count + 1).json")) {
            messages.append(try JSONDecoder().decode(Message.self, from: json))
        }
        return messages
    }

    /// Waits until `count` messages arrived (or `timeout` passed) and returns them.
    func waitForMessages(_ count: Int, timeout: TimeInterval = 15) async throws -> [Message] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let received = try messages()
            if received.count >= count { return received }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try messages()
    }
}

/// A local HTTP server receiving webhook requests (a second Vapor application on 127.0.0.1):
/// it records every request and answers the next status from `statuses` (the last repeats).
final class WebhookReceiver: @unchecked Sendable {
    struct Request: Sendable {
        var headers: HTTPHeaders
        var body: String
        var at: Date
    }

    private let app: Application
    private let state: NIOLockedValueBox<(statuses: [HTTPStatus], received: [Request])>
    let port: Int
    var url: String { "http://127.0.0.1:\(port)/hook?channel=ops" }

    init(statuses: [HTTPStatus] = [.ok]) async throws {
        let state = NIOLockedValueBox((statuses: statuses, received: [Request]()))
        self.state = state
        app = try await Application.make(.testing)
        app.logger.logLevel = .warning
        app.routes.defaultMaxBodySize = "4mb"
        app.post("hook") { request -> HTTPStatus in
            let body = request.body.string ?? ""
            return state.withLockedValue { state in
                state.received.append(Request(headers: request.headers, body: body, at: Date()))
                return state.statuses.count > 1 ? state.statuses.removeFirst() : state.statuses.first ?? .ok
            }
        }
        try await app.server.start(address: .hostname("127.0.0.1", port: 0))
        guard let port = app.http.server.shared.localAddress?.port else { throw NotificationTestError("the receiver has no port") }
        self.port = port
    }

    var received: [Request] { state.withLockedValue { $0.received } }

    func waitForRequests(_ count: Int, timeout: TimeInterval = 15) async throws -> [Request] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, received.count < count {
            try await Task.sleep(for: .milliseconds(50))
        }
        return received
    }

    func stop() async {
        await app.server.shutdown()
        try? await app.asyncShutdown()
    }
}

struct NotificationTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension FileManager {
    fileprivate func removeItem(at url: URL, ifExists: Bool) throws {
        if fileExists(atPath: url.path) { try removeItem(at: url) }
    }
}

/// A TCP port on 127.0.0.1 that nothing listened on at the moment of the call.
func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw NotificationTestError("socket failed: errno \(errno)") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
        }
    }
    guard bound else { throw NotificationTestError("bind failed: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}
