/// Every failure of the Mail library: the stage a send reached, what went wrong there, and the
/// server's own answer when it gave one, so that "mail failed" can always say why.
public struct MailError: Error, Sendable, Hashable, CustomStringConvertible {
    /// How far a send got. A struct rather than an enum so that stages can be added without
    /// breaking callers that switch over it (swift-nio style).
    public struct Stage: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case composition, connect, tls, greeting, hello, authentication, sender, recipient, data
        }
        private let base: Base

        /// Building the message or checking the settings, before any connection.
        public static let composition = Stage(base: .composition)
        /// Opening the TCP connection.
        public static let connect = Stage(base: .connect)
        /// STARTTLS or the TLS handshake (implicit or after STARTTLS).
        public static let tls = Stage(base: .tls)
        /// Waiting for the server's 220 greeting.
        public static let greeting = Stage(base: .greeting)
        /// EHLO, or HELO after a server refused EHLO.
        public static let hello = Stage(base: .hello)
        /// AUTH PLAIN or AUTH LOGIN.
        public static let authentication = Stage(base: .authentication)
        /// MAIL FROM.
        public static let sender = Stage(base: .sender)
        /// RCPT TO.
        public static let recipient = Stage(base: .recipient)
        /// DATA and the message itself.
        public static let data = Stage(base: .data)

        public var description: String { base.rawValue }
    }

    /// What went wrong at that stage. Extensible like `Stage`.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidInput, unreachable, timeout, rejected, tlsUnavailable, tlsFailed
            case insecureAuthentication, authenticationUnavailable, connectionClosed, protocolViolation
        }
        private let base: Base

        /// A value cannot be used: an address, subject or name with control characters, a
        /// malformed address, a message without recipients, an unreadable CA file.
        public static let invalidInput = Kind(base: .invalidInput)
        /// The server could not be reached (refused, unresolvable, unreachable).
        public static let unreachable = Kind(base: .unreachable)
        /// A connect, command or whole-send deadline passed.
        public static let timeout = Kind(base: .timeout)
        /// The server answered with an error code; `reply` holds it.
        public static let rejected = Kind(base: .rejected)
        /// STARTTLS was required but the server does not offer it; nothing else was sent.
        public static let tlsUnavailable = Kind(base: .tlsUnavailable)
        /// The TLS handshake failed (untrusted or mismatching certificate, no common protocol).
        public static let tlsFailed = Kind(base: .tlsFailed)
        /// Credentials would have crossed the network in clear; they were not sent.
        public static let insecureAuthentication = Kind(base: .insecureAuthentication)
        /// The server offers no AUTH mechanism this client speaks (or none at all).
        public static let authenticationUnavailable = Kind(base: .authenticationUnavailable)
        /// The server closed the connection before answering.
        public static let connectionClosed = Kind(base: .connectionClosed)
        /// The server's answer does not follow SMTP (malformed or oversized reply, data sent
        /// unasked, plain text injected after STARTTLS).
        public static let protocolViolation = Kind(base: .protocolViolation)

        public var description: String { base.rawValue }
    }

    public var stage: Stage
    public var kind: Kind
    /// `host:port` of the server; empty for failures before any connection was attempted.
    public var server: String
    /// The server's reply that caused the failure, if there was one.
    public var reply: SMTPReply?
    /// Every recipient the server refused, with its reply (stage `.recipient`: all were refused).
    public var rejectedRecipients: [RecipientRejection]
    /// A human-readable explanation. Never contains a password.
    public var message: String

    public init(
        _ stage: Stage, _ kind: Kind, server: String = "", reply: SMTPReply? = nil, rejectedRecipients: [RecipientRejection] = [],
        message: String
    ) {
        self.stage = stage
        self.kind = kind
        self.server = server
        self.reply = reply
        self.rejectedRecipients = rejectedRecipients
        self.message = message
    }

    /// Whether the same send may succeed later, so a queue should retry it: the server was
    /// unreachable, slow or went away, or answered 4xx (RFC 5321 4.2.1). A 5xx answer, a bad
    /// message, missing TLS or refused credentials stay the same until someone changes something.
    public var isTransient: Bool {
        switch kind {
        case .unreachable, .timeout, .connectionClosed: return true
        case .rejected: return reply.map { (400..<500).contains($0.code) } ?? false
        default: return false
        }
    }

    public var description: String {
        let place = server.isEmpty ? "" : " (\(server))"
        let answer = reply.map { "; server replied \($0)" } ?? ""
        return "mail \(stage) \(kind)\(place): \(message)\(answer)"
    }
}

/// A recipient the server refused at RCPT TO, and its reply.
public struct RecipientRejection: Sendable, Hashable, CustomStringConvertible {
    public var recipient: EmailAddress
    public var reply: SMTPReply

    public init(recipient: EmailAddress, reply: SMTPReply) {
        self.recipient = recipient
        self.reply = reply
    }

    public var description: String { "<\(recipient.address)>: \(reply)" }
}
