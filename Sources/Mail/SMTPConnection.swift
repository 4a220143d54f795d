import NIOCore
import NIOPosix
import NIOSSL

/// An open connection to an SMTP server that has greeted: commands go one at a time through
/// `SMTPClientHandler` and are awaited here. Cancelling the waiting task closes the connection.
struct SMTPConnection: Sendable {
    let channel: any Channel
    /// `host:port`, for errors.
    let server: String
    /// The server's 220 greeting, or whatever it answered instead.
    let greeting: SMTPReply

    /// Connects, with TLS first when `implicitTLS` is set, and waits for the greeting.
    /// Failures are `MailError`s of stage `.connect`, `.tls` or `.greeting`.
    static func open(
        host: String, port: Int, implicitTLS: Bool, tlsUpgrade: TLSUpgrade?, timeouts: SMTPTimeouts, deadline: NIODeadline,
        eventLoopGroup: any EventLoopGroup
    ) async throws -> SMTPConnection {
        let server = "\(host):\(port)"
        let eventLoop = eventLoopGroup.next()
        let greeting = eventLoop.makePromise(of: SMTPReply.self)
        let connectTimeout = min(TimeAmount(timeouts.connect), deadline - .now())
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if implicitTLS, let tlsUpgrade {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tlsUpgrade.context, serverHostname: tlsUpgrade.serverHostname))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        SMTPClientHandler(
                            server: server, greeting: greeting, commandTimeout: timeouts.command, sendTimeout: timeouts.total,
                            deadline: deadline,
                            tlsUpgrade: tlsUpgrade, implicitTLS: implicitTLS)
                    )
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            let failure = connectError(error, server: server, host: host, timeout: Duration(connectTimeout))
            greeting.fail(failure)
            throw failure
        }
        do {
            let reply = try await withTaskCancellationHandler {
                try await greeting.futureResult.get()
            } onCancel: {
                channel.close(promise: nil)
            }
            return SMTPConnection(channel: channel, server: server, greeting: reply)
        } catch {
            try? await channel.close()
            try Task.checkCancellation()
            throw error
        }
    }

    /// Sends one command line (CRLF is added) and returns the reply, whatever its code.
    /// - Parameter summary: How errors name the command; defaults to the line. Give one for
    ///   lines that carry credentials.
    func command(_ line: String, stage: MailError.Stage, summary: String? = nil, startsTLS: Bool = false) async throws -> SMTPReply {
        // Every value in a command was checked when it was made; this is the last line of defence.
        guard !line.utf8.contains(where: { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") }) else {
            throw MailError(stage, .invalidInput, server: server, message: "refusing to send a command containing a line break")
        }
        var bytes = channel.allocator.buffer(capacity: line.utf8.count + 2)
        bytes.writeString(line)
        bytes.writeString("\r\n")
        return try await exchange(bytes, stage: stage, summary: summary ?? line, startsTLS: startsTLS)
    }

    /// Sends `bytes` as they are (the message after DATA) and returns the reply.
    func exchange(_ bytes: ByteBuffer, stage: MailError.Stage, summary: String, startsTLS: Bool = false) async throws -> SMTPReply {
        let reply = channel.eventLoop.makePromise(of: SMTPReply.self)
        channel.writeAndFlush(SMTPExchange(bytes: bytes, stage: stage, summary: summary, startsTLS: startsTLS, reply: reply), promise: nil)
        do {
            return try await withTaskCancellationHandler {
                try await reply.futureResult.get()
            } onCancel: { [channel] in
                channel.close(promise: nil)
            }
        } catch {
            try Task.checkCancellation()
            throw error
        }
    }

    /// The address this side of the connection uses, as an RFC 5321 address literal for HELO
    /// (`[192.0.2.1]`, `[IPv6:2001:db8::1]`).
    var localAddressLiteral: String? {
        guard let address = channel.localAddress, let ip = address.ipAddress else { return nil }
        if case .v6 = address { return "[IPv6:\(ip)]" }
        return "[\(ip)]"
    }

    func close() async {
        try? await channel.close()
    }
}

private func connectError(_ error: any Error, server: String, host: String, timeout: Duration) -> MailError {
    if case ChannelError.connectTimeout = error {
        return MailError(.connect, .timeout, server: server, message: "TCP connect did not complete within \(timeout.secondsDescription)")
    }
    guard let error = error as? NIOConnectionError else {
        return MailError(.connect, .unreachable, server: server, message: "cannot connect: \(error)")
    }
    if error.connectionErrors.isEmpty {
        let resolverError = error.dnsAError ?? error.dnsAAAAError
        return MailError(
            .connect, .unreachable, server: server, message: "cannot resolve \(host): \(resolverError.map { "\($0)" } ?? "no addresses")")
    }
    let attempts = error.connectionErrors.map { "\($0.target): \($0.error)" }.joined(separator: "; ")
    return MailError(.connect, .unreachable, server: server, message: "cannot connect: \(attempts)")
}
