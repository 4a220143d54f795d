import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// How the connection to the SMTP server is protected.
public enum SMTPSecurity: String, Sendable, Hashable {
    /// Plain text throughout (a relay on the same host or network). Credentials are refused
    /// unless `SMTPServer.allowsAuthenticationWithoutTLS` is set.
    case none
    /// Plain connection upgraded with STARTTLS before anything else is sent (port 587). A server
    /// that does not offer STARTTLS is refused: the client never continues in clear.
    case startTLS = "starttls"
    /// TLS from the first byte (port 465).
    case tls
}

/// Which certificate authorities a TLS server certificate must chain to. There is no
/// accept-anything setting.
public enum SMTPTrust: Sendable, Hashable {
    /// The operating system's trusted roots.
    case systemRoots
    /// Only the certificates in this PEM file (a private CA, a test server's own CA).
    case certificateAuthorities(pemFile: String)
}

public enum SMTPAuthenticationMechanism: String, Sendable, Hashable {
    case plain = "PLAIN"
    case login = "LOGIN"
}

/// A user name and password for AUTH. The description never shows the password.
public struct SMTPCredentials: Sendable, CustomStringConvertible {
    public var username: String
    public var password: String
    /// The mechanism to use; nil picks PLAIN when the server offers it, otherwise LOGIN.
    public var mechanism: SMTPAuthenticationMechanism?

    public init(username: String, password: String, mechanism: SMTPAuthenticationMechanism? = nil) {
        self.username = username
        self.password = password
        self.mechanism = mechanism
    }

    public var description: String { "\(username) (password hidden)" }
}

/// Where and how to deliver.
public struct SMTPServer: Sendable {
    public var host: String
    public var port: Int
    public var security: SMTPSecurity
    public var trust: SMTPTrust
    public var credentials: SMTPCredentials?
    /// Allows AUTH over a connection without TLS (`security: .none`), which sends the password
    /// readable to anyone on the path. Off unless a caller deliberately turns it on.
    public var allowsAuthenticationWithoutTLS: Bool

    /// - Parameter port: Defaults to 465 for `.tls` and 587 otherwise.
    public init(
        host: String, port: Int? = nil, security: SMTPSecurity = .startTLS, trust: SMTPTrust = .systemRoots,
        credentials: SMTPCredentials? = nil, allowsAuthenticationWithoutTLS: Bool = false
    ) {
        self.host = host
        self.port = port ?? (security == .tls ? 465 : 587)
        self.security = security
        self.trust = trust
        self.credentials = credentials
        self.allowsAuthenticationWithoutTLS = allowsAuthenticationWithoutTLS
    }
}

/// How long each part of a send may take; a send fails with kind `.timeout` when one passes.
public struct SMTPTimeouts: Sendable {
    /// The TCP connect.
    public var connect: Duration
    /// Each wait for a reply (the greeting, every command, the TLS handshake, the end of DATA).
    public var command: Duration
    /// The whole send, from connect to the reply after the message.
    public var total: Duration

    public init(connect: Duration = .seconds(10), command: Duration = .seconds(60), total: Duration = .seconds(180)) {
        self.connect = connect
        self.command = command
        self.total = total
    }
}

/// What the server accepted.
public struct MailDelivery: Sendable, Hashable {
    /// The recipients the server took the message for.
    public var accepted: [EmailAddress]
    /// The recipients it refused (when at least one other was accepted; if none was, the send throws).
    public var rejected: [RecipientRejection]
    /// The server's reply to the message (often carrying its queue id).
    public var reply: SMTPReply
}

/// Sends messages over SMTP (RFC 5321) on SwiftNIO, one connection per message: greeting,
/// EHLO (HELO for servers that refuse EHLO), STARTTLS or implicit TLS, AUTH PLAIN or LOGIN,
/// MAIL FROM, RCPT TO for each recipient, DATA, QUIT.
///
/// Every failure is a `MailError` naming the stage, its kind and the server's reply.
public struct SMTPClient: Sendable {
    public var server: SMTPServer
    public var timeouts: SMTPTimeouts
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger

    public init(
        server: SMTPServer, timeouts: SMTPTimeouts = SMTPTimeouts(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "Mail")
    ) {
        self.server = server
        self.timeouts = timeouts
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    /// Delivers `message` to the server for all its recipients.
    ///
    /// Recipients the server refuses are listed in the result while the others still get the
    /// message; if it refuses all of them, the send throws (stage `.recipient`).
    /// Cancelling the task closes the connection and throws `CancellationError`.
    public func send(_ message: MailMessage) async throws -> MailDelivery {
        let deadline = NIODeadline.now() + TimeAmount(timeouts.total)
        let serverName = "\(server.host):\(server.port)"
        try checkCredentialsCanBeSent()
        let tlsUpgrade = server.security == .none ? nil : try makeTLSUpgrade()
        let connection = try await SMTPConnection.open(
            host: server.host, port: server.port, implicitTLS: server.security == .tls, tlsUpgrade: tlsUpgrade, timeouts: timeouts,
            deadline: deadline, eventLoopGroup: eventLoopGroup)
        do {
            let delivery = try await deliver(message, over: connection)
            _ = try? await connection.command("QUIT", stage: .data)
            await connection.close()
            logger.debug(
                "mail delivered",
                metadata: ["server": "\(serverName)", "message-id": "\(message.messageID)", "reply": "\(delivery.reply)"])
            return delivery
        } catch let error as MailError
            where error.kind == .rejected || error.kind == .tlsUnavailable || error.kind == .authenticationUnavailable
        {
            // The server is still listening: say goodbye before closing.
            _ = try? await connection.command("QUIT", stage: error.stage)
            await connection.close()
            throw error
        } catch {
            await connection.close()
            throw error
        }
    }

    private func deliver(_ message: MailMessage, over connection: SMTPConnection) async throws -> MailDelivery {
        guard connection.greeting.code == 220 else {
            throw MailError(
                .greeting, .rejected, server: connection.server, reply: connection.greeting, message: "the server refused the connection")
        }
        var capabilities = try await hello(over: connection)
        if server.security == .startTLS {
            guard capabilities.keywords.contains("STARTTLS") else {
                throw MailError(
                    .tls, .tlsUnavailable, server: connection.server,
                    message: "the server does not offer STARTTLS, which is required; nothing else was sent (no credentials, no message)")
            }
            let reply = try await connection.command("STARTTLS", stage: .tls, startsTLS: true)
            guard reply.code == 220 else {
                throw MailError(.tls, .rejected, server: connection.server, reply: reply, message: "the server refused STARTTLS")
            }
            // RFC 3207: forget what was learnt in clear and ask again over TLS.
            capabilities = try await hello(over: connection, allowsHELO: false)
        }
        if let credentials = server.credentials {
            try await authenticate(credentials, offered: capabilities.authenticationMechanisms, over: connection)
        }
        let sender = try await connection.command("MAIL FROM:<\(message.from.address)>", stage: .sender)
        guard sender.code == 250 else {
            throw MailError(
                .sender, .rejected, server: connection.server, reply: sender,
                message: "the server refused the sender <\(message.from.address)>")
        }
        var accepted: [EmailAddress] = []
        var rejected: [RecipientRejection] = []
        for recipient in message.to {
            let reply = try await connection.command("RCPT TO:<\(recipient.address)>", stage: .recipient)
            if reply.code == 250 || reply.code == 251 {
                accepted.append(recipient)
            } else {
                rejected.append(RecipientRejection(recipient: recipient, reply: reply))
            }
        }
        guard !accepted.isEmpty else {
            let list = rejected.map(\.description).joined(separator: "; ")
            throw MailError(
                .recipient, .rejected, server: connection.server, reply: rejected.last?.reply, rejectedRecipients: rejected,
                message: "the server refused every recipient: \(list)")
        }
        let dataReply = try await connection.command("DATA", stage: .data)
        guard dataReply.code == 354 else {
            throw MailError(.data, .rejected, server: connection.server, reply: dataReply, message: "the server refused DATA")
        }
        let messageReply = try await connection.exchange(
            dataPayload(message.rendered(), allocator: connection.channel.allocator), stage: .data, summary: "the message")
        guard messageReply.code == 250 else {
            throw MailError(.data, .rejected, server: connection.server, reply: messageReply, message: "the server refused the message")
        }
        return MailDelivery(accepted: accepted, rejected: rejected, reply: messageReply)
    }

    /// EHLO, or HELO when the server refuses EHLO with a permanent error (servers from before
    /// ESMTP; they offer no extensions, so no STARTTLS and no AUTH).
    private func hello(over connection: SMTPConnection, allowsHELO: Bool = true) async throws -> Capabilities {
        let name = helloName(connection)
        let reply = try await connection.command("EHLO \(name)", stage: .hello)
        if reply.code == 250 {
            return Capabilities(reply)
        }
        guard allowsHELO, (500..<600).contains(reply.code) else {
            throw MailError(.hello, .rejected, server: connection.server, reply: reply, message: "the server refused EHLO")
        }
        let heloReply = try await connection.command("HELO \(name)", stage: .hello)
        guard heloReply.code == 250 else {
            throw MailError(
                .hello, .rejected, server: connection.server, reply: heloReply, message: "the server refused both EHLO and HELO")
        }
        return Capabilities(keywords: [], authenticationMechanisms: [])
    }

    /// This machine's host name when it is a fully qualified domain, otherwise the address
    /// literal of the connection's local address (RFC 5321 4.1.4).
    private func helloName(_ connection: SMTPConnection) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        if gethostname(&buffer, buffer.count - 1) == 0 {
            let name = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if name.contains("."), isHostName(Substring(name)) { return name }
        }
        return connection.localAddressLiteral ?? "[127.0.0.1]"
    }

    private func authenticate(_ credentials: SMTPCredentials, offered: Set<String>, over connection: SMTPConnection) async throws {
        let mechanism: SMTPAuthenticationMechanism
        let offeredList = offered.isEmpty ? "none" : offered.sorted().joined(separator: " ")
        if let chosen = credentials.mechanism {
            guard offered.contains(chosen.rawValue) else {
                throw MailError(
                    .authentication, .authenticationUnavailable, server: connection.server,
                    message: "the server does not offer AUTH \(chosen.rawValue) (it offers: \(offeredList)); credentials were not sent")
            }
            mechanism = chosen
        } else if offered.contains("PLAIN") {
            mechanism = .plain
        } else if offered.contains("LOGIN") {
            mechanism = .login
        } else {
            throw MailError(
                .authentication, .authenticationUnavailable, server: connection.server,
                message: "the server offers no AUTH mechanism this client speaks (it offers: \(offeredList)); credentials were not sent")
        }
        func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        func refused(_ reply: SMTPReply, _ step: String) -> MailError {
            MailError(
                .authentication, .rejected, server: connection.server, reply: reply,
                message: "the server refused \(step) for user \(printable(credentials.username))")
        }
        switch mechanism {
        case .plain:
            let token = base64("\0\(credentials.username)\0\(credentials.password)")
            let reply = try await connection.command("AUTH PLAIN \(token)", stage: .authentication, summary: "AUTH PLAIN")
            guard reply.code == 235 else { throw refused(reply, "the credentials (AUTH PLAIN)") }
        case .login:
            let start = try await connection.command("AUTH LOGIN", stage: .authentication)
            guard start.code == 334 else { throw refused(start, "AUTH LOGIN") }
            let user = try await connection.command(base64(credentials.username), stage: .authentication, summary: "AUTH LOGIN user name")
            guard user.code == 334 else { throw refused(user, "the user name (AUTH LOGIN)") }
            let password = try await connection.command(
                base64(credentials.password), stage: .authentication, summary: "AUTH LOGIN password")
            guard password.code == 235 else { throw refused(password, "the credentials (AUTH LOGIN)") }
        }
    }

    /// Refuses, before connecting, credentials that would travel in clear or cannot be encoded.
    private func checkCredentialsCanBeSent() throws {
        guard let credentials = server.credentials else { return }
        if server.security == .none && !server.allowsAuthenticationWithoutTLS {
            throw MailError(
                .authentication, .insecureAuthentication, server: "\(server.host):\(server.port)",
                message:
                    "refusing to send credentials without TLS; use security starttls or tls (or allow authentication without TLS explicitly)"
            )
        }
        guard !credentials.username.isEmpty, !credentials.username.utf8.contains(0), !credentials.password.utf8.contains(0) else {
            throw MailError(
                .composition, .invalidInput, message: "an SMTP user name must be non-empty, and neither it nor the password may contain NUL"
            )
        }
    }

    private func makeTLSUpgrade() throws -> TLSUpgrade {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        switch server.trust {
        case .systemRoots:
            configuration.trustRoots = .default
        case .certificateAuthorities(let pemFile):
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(pemFile))
            } catch {
                throw MailError(.tls, .invalidInput, message: "cannot read the certificate authorities in \(pemFile): \(error)")
            }
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw MailError(.tls, .tlsFailed, message: "cannot set up TLS: \(error)")
        }
        // NIOSSL checks an IP address against the certificate's IP entries when no name is given.
        let isIPAddress = (try? SocketAddress(ipAddress: server.host, port: 0)) != nil
        return TLSUpgrade(context: context, serverHostname: isIPAddress ? nil : server.host)
    }
}

/// What a server offers in its EHLO reply.
struct Capabilities {
    /// Extension keywords, upper-cased (`STARTTLS`, `AUTH`, `SIZE`, ...).
    var keywords: Set<String>
    /// Mechanisms from `AUTH` lines (and the old `AUTH=` form), upper-cased.
    var authenticationMechanisms: Set<String>

    init(keywords: Set<String>, authenticationMechanisms: Set<String>) {
        self.keywords = keywords
        self.authenticationMechanisms = authenticationMechanisms
    }

    init(_ ehloReply: SMTPReply) {
        var keywords = Set<String>()
        var mechanisms = Set<String>()
        for line in ehloReply.lines.dropFirst() {
            let words = line.uppercased().split(separator: " ").map(String.init)
            guard let keyword = words.first else { continue }
            if keyword == "AUTH" {
                mechanisms.formUnion(words.dropFirst())
            } else if keyword.hasPrefix("AUTH=") {
                mechanisms.formUnion([String(keyword.dropFirst(5))] + words.dropFirst())
            }
            keywords.insert(keyword)
        }
        self.keywords = keywords
        self.authenticationMechanisms = mechanisms
    }
}

/// The message as DATA carries it (RFC 5321 4.5.2): every line end CRLF, a `.` added before
/// each line that starts with `.`, and the closing `.` line.
func dataPayload(_ message: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
    var lines = MIMEEncoding.lines(of: message)
    if lines.last?.isEmpty == true { lines.removeLast() }
    var buffer = allocator.buffer(capacity: message.count + message.count / 32 + 5)
    for line in lines {
        if line.first == UInt8(ascii: ".") { buffer.writeInteger(UInt8(ascii: ".")) }
        buffer.writeBytes(line)
        buffer.writeStaticString("\r\n")
    }
    buffer.writeStaticString(".\r\n")
    return buffer
}
