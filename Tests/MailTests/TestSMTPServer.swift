import Foundation
import NIOCore
import NIOPosix
import XCTest

/// A real SMTP server for one test: aiosmtpd run by `smtp_test_server.py` on 127.0.0.1 and a
/// free port, writing what it receives to a private directory. Stopped (SIGTERM, then waited
/// for) by `stop()` or deinit; the script also exits by itself if the test process dies.
/// Needs `python3` with aiosmtpd and trustme (scripts/pip-packages.txt); without them `init`
/// throws, so the tests fail rather than skip.
final class TestSMTPServer {
    static let user = "notifier"
    static let password = "correct horse battery staple"

    enum Security: String {
        case none, starttls, tls
    }

    let directory: URL
    let port: Int
    private var pid: pid_t?

    /// The PEM file of the CA that signed the server's certificate (TLS modes only).
    var certificateAuthorityFile: String { directory.appendingPathComponent("ca.pem").path }

    /// - Parameters:
    ///   - authentication: Accept AUTH PLAIN and LOGIN for `user` / `password`.
    ///   - authenticationWithoutTLS: Offer AUTH on a plain connection too.
    ///   - withoutEHLO: Answer EHLO with 502, as servers from before ESMTP do.
    ///   - excludedMechanisms: AUTH mechanisms the server does not offer (`LOGIN`, `PLAIN`).
    init(
        security: Security, authentication: Bool = false, authenticationWithoutTLS: Bool = false, withoutEHLO: Bool = false,
        excludedMechanisms: [String] = []
    ) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("mail-smtpd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try freeLoopbackPort()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("smtp_test_server.py").path
        var arguments = [
            "/usr/bin/env", "python3", script, "--directory", directory.path, "--port", "\(port)", "--security", security.rawValue,
        ]
        if authentication { arguments += ["--user", Self.user, "--password", Self.password] }
        if authenticationWithoutTLS { arguments += ["--auth-without-tls"] }
        if withoutEHLO { arguments += ["--without-ehlo"] }
        arguments += excludedMechanisms.flatMap { ["--exclude-mechanism", $0] }
        let log = directory.appendingPathComponent("server.log").path
        let pid = try spawn(arguments, logPath: log)
        self.pid = pid
        let ready = directory.appendingPathComponent("ready").path
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                self.pid = nil
                throw TestEnvironmentError(
                    "the SMTP test server exited (wait status \(status)): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
            if FileManager.default.fileExists(atPath: ready) { return }
            usleep(20_000)
        }
        stop()
        throw TestEnvironmentError(
            "the SMTP test server was not ready within 30 s: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// SIGTERM, and SIGKILL if the server has not exited 5 s later.
    func stop() {
        guard let pid else { return }
        self.pid = nil
        kill(pid, SIGTERM)
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(5)
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                return
            }
            usleep(20_000)
        }
    }

    /// What the server received, in order, as Python's email parser read it.
    func receivedMessages() throws -> [ReceivedMessage] {
        var messages: [ReceivedMessage] = []
        while true {
            let base = directory.appendingPathComponent("message-\(messages.count + 1)")
            guard let json = try? Data(contentsOf: base.appendingPathExtension("json")) else { return messages }
            var message = try JSONDecoder().decode(ReceivedMessage.self, from: json)
            message.raw = String(decoding: try Data(contentsOf: base.appendingPathExtension("eml")), as: UTF8.self)
            messages.append(message)
        }
    }

    /// The command lines the server read, as aiosmtpd logs them (`EHLO [127.0.0.1]`,
    /// `AUTH PLAIN ********`), upper-cased verbs.
    func commands() -> [String] {
        let log = (try? String(contentsOf: directory.appendingPathComponent("transcript.log"), encoding: .utf8)) ?? ""
        return log.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: ">> b'") ?? line.range(of: ">> b\"") else { return nil }
            return String(line[range.upperBound...].dropLast()).uppercased()
        }
    }

    /// `MECHANISM accepted|refused` for each AUTH the server's authenticator decided.
    func authenticationLog() -> [String] {
        let log = (try? String(contentsOf: directory.appendingPathComponent("auth.log"), encoding: .utf8)) ?? ""
        return log.split(separator: "\n").map(String.init)
    }
}

/// One message as `smtp_test_server.py` recorded it.
struct ReceivedMessage: Decodable {
    var mail_from: String
    var rcpt_tos: [String]
    var header_names: [String]
    var from: String
    var to: String
    var subject: String
    var date: String
    var message_id: String
    var content_type: String
    var charset: String?
    var transfer_encoding: String
    var body: String?
    var defects: [String]
    var authenticated: Bool
    var tls: Bool
    /// The bytes after DATA as the server stored them (dot-stuffing removed).
    var raw: String = ""

    private enum CodingKeys: String, CodingKey {
        case mail_from, rcpt_tos, header_names, from, to, subject, date, message_id, content_type, charset, transfer_encoding, body
        case defects, authenticated, tls
    }
}

/// A TCP server on 127.0.0.1 that answers each line it reads with whatever `answer` returns
/// for it (after sending `greeting`, if any): for servers aiosmtpd cannot play, such as one
/// that never speaks or one that misbehaves around STARTTLS.
final class ScriptedServer: @unchecked Sendable {
    let port: Int
    private let channel: any Channel

    init(greeting: String?, answer: @escaping @Sendable (String) -> String?) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(ScriptedLineHandler(greeting: greeting, answer: answer))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        port = channel.localAddress?.port ?? 0
    }

    func stop() async {
        try? await channel.close()
    }
}

private final class ScriptedLineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let greeting: String?
    private let answer: @Sendable (String) -> String?
    private var received = ByteBuffer()

    init(greeting: String?, answer: @escaping @Sendable (String) -> String?) {
        self.greeting = greeting
        self.answer = answer
    }

    func channelActive(context: ChannelHandlerContext) {
        if let greeting {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: greeting)), promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        while let newline = received.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let line = received.readString(length: newline - received.readerIndex + 1) ?? ""
            if let reply = answer(line.trimmingCharacters(in: .whitespacesAndNewlines)) {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: reply)), promise: nil)
            }
        }
    }
}

/// A listening socket on 127.0.0.1 that never accepts, with its accept queue filled, so the
/// kernel drops further SYNs: a server that cannot be reached, without leaving loopback.
final class SaturatedListener {
    let port: Int
    private let descriptor: Int32
    private var fillers: [Int32] = []

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw TestEnvironmentError("socket failed: errno \(errno)") }
        var address = loopbackAddress(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 1) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard listening else {
            close(listener)
            throw TestEnvironmentError("bind/listen failed: errno \(errno)")
        }
        descriptor = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        for _ in 0..<4 {
            let filler = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            var target = loopbackAddress(port: port)
            _ = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(filler, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            fillers.append(filler)
        }
        usleep(100_000)
    }

    deinit {
        fillers.forEach { close($0) }
        close(descriptor)
    }
}

private func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
    return address
}

struct TestEnvironmentError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A TCP port on 127.0.0.1 that nothing listened on at the moment of the call.
func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw TestEnvironmentError("socket failed: errno \(errno)") }
    defer { close(descriptor) }
    var address = loopbackAddress(port: 0)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
        }
    }
    guard bound else { throw TestEnvironmentError("bind failed: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Starts a process with standard input from /dev/null and its output appended to `logPath`.
/// posix_spawn rather than Foundation's Process: with a long-running Process child,
/// swift-corelibs-foundation can block in wait4 on it and never notice other children exit.
private func spawn(_ arguments: [String], logPath: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    let result = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
    guard result == 0 else { throw TestEnvironmentError("cannot start \(arguments[0]): error \(result)") }
    return pid
}
