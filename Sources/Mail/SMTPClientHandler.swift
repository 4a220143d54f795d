import NIOCore
import NIOSSL
import NIOTLS

/// One command written down the pipeline, and the promise for the server's reply to it.
struct SMTPExchange: Sendable {
    /// The command line(s) with their CRLF, or the dot-stuffed message after DATA.
    var bytes: ByteBuffer
    /// The stage a failure of this exchange is reported in.
    var stage: MailError.Stage
    /// What the command was, for error messages ("MAIL FROM", "AUTH LOGIN password"); never a secret.
    var summary: String
    /// STARTTLS: on a 220 reply, the handler installs TLS and answers only after the handshake.
    var startsTLS: Bool
    var reply: EventLoopPromise<SMTPReply>
}

/// How to start TLS after STARTTLS.
struct TLSUpgrade: Sendable {
    var context: NIOSSLContext
    /// The name the certificate must carry; nil for an IP address, which NIOSSL then checks
    /// against the certificate's IP entries.
    var serverHostname: String?
}

/// The SMTP protocol on one connection: waits for the greeting, then sends one command at a
/// time and answers each with its reply, parsed from the byte stream (multi-line replies
/// included). Every wait has a deadline: the per-command timeout or the end of the whole send,
/// whichever comes first. Any failure (timeout, closed connection, TLS error, malformed
/// reply) fails the waiting exchange with a `MailError` naming its stage and closes the
/// connection, so nothing waits on a server that has stopped talking.
final class SMTPClientHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = SMTPExchange
    typealias OutboundOut = ByteBuffer

    private struct Waiting {
        var stage: MailError.Stage
        var summary: String
        var startsTLS: Bool
        var reply: EventLoopPromise<SMTPReply>
        var timer: Scheduled<Void>?
        /// The 220 to STARTTLS, held until the TLS handshake completes.
        var acceptedTLS: SMTPReply?
    }

    private let server: String
    private let commandTimeout: Duration
    private let sendTimeout: Duration
    private let deadline: NIODeadline
    private let tlsUpgrade: TLSUpgrade?
    private var greeting: EventLoopPromise<SMTPReply>?
    private var waiting: Waiting?
    private var tlsHandshaking: Bool
    private var failure: MailError?
    private var received = ByteBuffer()
    private var parser = SMTPReplyParser()

    /// - Parameters:
    ///   - implicitTLS: A TLS handler sits before this one; its handshake precedes the greeting.
    init(
        server: String, greeting: EventLoopPromise<SMTPReply>, commandTimeout: Duration, sendTimeout: Duration, deadline: NIODeadline,
        tlsUpgrade: TLSUpgrade?, implicitTLS: Bool
    ) {
        self.server = server
        self.greeting = greeting
        self.commandTimeout = commandTimeout
        self.sendTimeout = sendTimeout
        self.deadline = deadline
        self.tlsUpgrade = tlsUpgrade
        self.tlsHandshaking = implicitTLS
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            awaitGreeting(context: context)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        awaitGreeting(context: context)
        context.fireChannelActive()
    }

    private func awaitGreeting(context: ChannelHandlerContext) {
        guard let greeting else { return }
        self.greeting = nil
        wait(for: Waiting(stage: .greeting, summary: "the greeting", startsTLS: false, reply: greeting), context: context)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        if let failure {
            exchange.reply.fail(failure)
            promise?.fail(failure)
            return
        }
        guard waiting == nil else {
            let error = MailError(
                exchange.stage, .protocolViolation, server: server, message: "\(exchange.summary) was sent before the previous reply")
            exchange.reply.fail(error)
            promise?.fail(error)
            return
        }
        wait(
            for: Waiting(stage: exchange.stage, summary: exchange.summary, startsTLS: exchange.startsTLS, reply: exchange.reply),
            context: context
        )
        context.write(wrapOutboundOut(exchange.bytes), promise: promise)
    }

    private func wait(for exchange: Waiting, context: ChannelHandlerContext) {
        var exchange = exchange
        let commandDeadline = NIODeadline.now() + TimeAmount(commandTimeout)
        let wholeSendEnds = deadline < commandDeadline
        exchange.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: min(commandDeadline, deadline)) {
            let what = self.tlsHandshaking ? "the TLS handshake" : "the reply to \(exchange.summary)"
            let message =
                wholeSendEnds
                ? "the send did not finish within \(self.sendTimeout.secondsDescription) (waiting for \(what))"
                : "no answer within \(self.commandTimeout.secondsDescription) (waiting for \(what))"
            self.fail(MailError(self.currentStage(exchange.stage), .timeout, server: self.server, message: message), context: context)
        }
        waiting = exchange
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.discardReadBytes()
        received.writeBuffer(&bytes)
        while failure == nil {
            let reply: SMTPReply
            do {
                guard let next = try parser.nextReply(from: &received) else { return }
                reply = next
            } catch {
                fail(MailError(currentStage(waiting?.stage), .protocolViolation, server: server, message: error.message), context: context)
                return
            }
            handle(reply, context: context)
        }
    }

    private func handle(_ reply: SMTPReply, context: ChannelHandlerContext) {
        guard var exchange = waiting, exchange.acceptedTLS == nil else {
            let message = "the server sent a reply nobody asked for: \(reply)"
            fail(
                MailError(currentStage(waiting?.stage), .protocolViolation, server: server, reply: reply, message: message),
                context: context)
            return
        }
        guard exchange.startsTLS, reply.code == 220 else {
            complete(with: reply)
            return
        }
        // Bytes after the 220 were sent in plain text but would be read as if they came
        // through TLS (the STARTTLS command injection of CVE-2011-0411): refuse them.
        guard received.readableBytes == 0 else {
            let message = "the server sent more data right after agreeing to STARTTLS; refusing to continue"
            fail(MailError(.tls, .protocolViolation, server: server, reply: reply, message: message), context: context)
            return
        }
        guard let tlsUpgrade else {
            fail(MailError(.tls, .tlsFailed, server: server, message: "no TLS settings for STARTTLS"), context: context)
            return
        }
        do {
            let tls = try NIOSSLClientHandler(context: tlsUpgrade.context, serverHostname: tlsUpgrade.serverHostname)
            exchange.acceptedTLS = reply
            waiting = exchange
            tlsHandshaking = true
            try context.pipeline.syncOperations.addHandler(tls, position: .first)
        } catch {
            fail(MailError(.tls, .tlsFailed, server: server, message: "cannot start TLS: \(error)"), context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            tlsHandshaking = false
            if let accepted = waiting?.acceptedTLS {
                complete(with: accepted)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func complete(with reply: SMTPReply) {
        guard let exchange = waiting else { return }
        waiting = nil
        exchange.timer?.cancel()
        exchange.reply.succeed(reply)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? MailError {
            fail(error, context: context)
        } else if tlsHandshaking {
            fail(MailError(.tls, .tlsFailed, server: server, message: "TLS handshake failed: \(error)"), context: context)
        } else if let exchange = waiting {
            let message = "connection failed while waiting for the reply to \(exchange.summary): \(error)"
            fail(MailError(exchange.stage, .connectionClosed, server: server, message: message), context: context)
        } else {
            // Nothing is waiting (a TLS peer closing without close_notify after QUIT): just close.
            fail(MailError(.data, .connectionClosed, server: server, message: "connection failed: \(error)"), context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let what = tlsHandshaking ? "during the TLS handshake" : "while waiting for the reply to \(waiting?.summary ?? "a command")"
        fail(
            MailError(currentStage(waiting?.stage), .connectionClosed, server: server, message: "the server closed the connection \(what)"),
            context: context)
        context.fireChannelInactive()
    }

    /// The stage to report: a failure during a TLS handshake is a TLS failure, whatever waited.
    private func currentStage(_ waitingStage: MailError.Stage?) -> MailError.Stage {
        tlsHandshaking ? .tls : waitingStage ?? .data
    }

    /// Fails the waiting exchange and every later one with `error` (the first failure wins), and closes.
    private func fail(_ error: MailError, context: ChannelHandlerContext) {
        guard failure == nil else { return }
        failure = error
        if let exchange = waiting {
            waiting = nil
            exchange.timer?.cancel()
            exchange.reply.fail(error)
        }
        context.close(promise: nil)
    }
}

extension Duration {
    var secondsDescription: String {
        let (seconds, attoseconds) = components
        return attoseconds == 0 ? "\(seconds) s" : "\(Double(seconds) + Double(attoseconds) / 1e18) s"
    }
}
