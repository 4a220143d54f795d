import Foundation
import Mail
import XCTest

/// Sends through a real SMTP server (aiosmtpd, see TestSMTPServer) and checks what arrived,
/// as Python's email parser reads it.
final class SMTPDeliveryTests: XCTestCase {
    private let shortTimeouts = SMTPTimeouts(connect: .seconds(5), command: .seconds(10), total: .seconds(20))

    private func message(
        to recipients: [String] = ["owner@example.org"], subject: String = "redis restarted on web-01",
        body: String = "restarted after 1 attempt\n"
    ) throws -> MailMessage {
        try MailMessage(
            from: EmailAddress("flotilla@example.org", displayName: "Flotilla"), to: recipients.map { try EmailAddress($0) },
            subject: subject,
            body: body)
    }

    private func client(
        _ server: TestSMTPServer, security: SMTPSecurity, credentials: SMTPCredentials? = nil, trustTestCA: Bool = true
    ) -> SMTPClient {
        SMTPClient(
            server: SMTPServer(
                host: "127.0.0.1", port: server.port, security: security,
                trust: trustTestCA && security != .none ? .certificateAuthorities(pemFile: server.certificateAuthorityFile) : .systemRoots,
                credentials: credentials),
            timeouts: shortTimeouts)
    }

    private func expectMailError(_ body: () async throws -> Void, file: StaticString = #filePath, line: UInt = #line) async -> MailError? {
        do {
            try await body()
            XCTFail("the send succeeded", file: file, line: line)
        } catch let error as MailError {
            return error
        } catch {
            XCTFail("not a MailError: \(error)", file: file, line: line)
        }
        return nil
    }

    func testPlainSendDeliversToEveryRecipient() async throws {
        let server = try TestSMTPServer(security: .none)
        defer { server.stop() }
        let sent = try message(to: ["owner@example.org", "deputy@example.org"])
        let delivery = try await client(server, security: .none).send(sent)
        XCTAssertEqual(delivery.accepted.map(\.address), ["owner@example.org", "deputy@example.org"])
        XCTAssertEqual(delivery.rejected, [])
        XCTAssertEqual(delivery.reply.code, 250)

        let received = try XCTUnwrap(try server.receivedMessages().onlyElement)
        XCTAssertEqual(received.mail_from, "flotilla@example.org")
        XCTAssertEqual(received.rcpt_tos, ["owner@example.org", "deputy@example.org"])
        XCTAssertEqual(received.from, "Flotilla <flotilla@example.org>")
        XCTAssertEqual(received.to, "owner@example.org, deputy@example.org")
        XCTAssertEqual(received.subject, "redis restarted on web-01")
        XCTAssertEqual(received.body, "restarted after 1 attempt\n")
        XCTAssertEqual(received.message_id, sent.messageID)
        XCTAssertEqual(received.content_type, "text/plain")
        XCTAssertEqual(received.charset, "utf-8")
        XCTAssertEqual(received.defects, [])
        XCTAssertFalse(received.tls)
        XCTAssertEqual(server.commands().first?.hasPrefix("EHLO "), true)
        XCTAssertEqual(server.commands().last, "QUIT")
    }

    func testStartTLSThenAuthPlain() async throws {
        let server = try TestSMTPServer(security: .starttls, authentication: true)
        defer { server.stop() }
        let credentials = SMTPCredentials(username: TestSMTPServer.user, password: TestSMTPServer.password)
        _ = try await client(server, security: .startTLS, credentials: credentials).send(message())

        let received = try XCTUnwrap(try server.receivedMessages().onlyElement)
        XCTAssertTrue(received.tls)
        XCTAssertTrue(received.authenticated)
        XCTAssertEqual(server.authenticationLog(), ["PLAIN accepted"])
        let verbs = server.commands().map { String($0.prefix(while: { $0 != " " })) }
        XCTAssertEqual(verbs, ["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"])
    }

    func testImplicitTLSThenAuthLogin() async throws {
        let server = try TestSMTPServer(security: .tls, authentication: true)
        defer { server.stop() }
        let credentials = SMTPCredentials(username: TestSMTPServer.user, password: TestSMTPServer.password, mechanism: .login)
        _ = try await client(server, security: .tls, credentials: credentials).send(message())

        let received = try XCTUnwrap(try server.receivedMessages().onlyElement)
        XCTAssertTrue(received.tls)
        XCTAssertTrue(received.authenticated)
        XCTAssertEqual(server.authenticationLog(), ["LOGIN accepted"])
    }

    func testWrongPasswordFailsAtTheAuthenticationStage() async throws {
        let server = try TestSMTPServer(security: .starttls, authentication: true)
        defer { server.stop() }
        let credentials = SMTPCredentials(username: TestSMTPServer.user, password: "wrong password")
        let error = await expectMailError {
            _ = try await self.client(server, security: .startTLS, credentials: credentials).send(self.message())
        }
        XCTAssertEqual(error?.stage, .authentication)
        XCTAssertEqual(error?.kind, .rejected)
        XCTAssertEqual(error?.reply?.code, 535)
        XCTAssertEqual(error?.isTransient, false, "a wrong password stays wrong")
        XCTAssertEqual(error?.server, "127.0.0.1:\(server.port)")
        XCTAssertFalse("\(error.map { "\($0)" } ?? "")".contains("wrong password"), "the password must not appear in the error")
        XCTAssertEqual(try server.receivedMessages().count, 0)
        XCTAssertFalse(server.commands().contains { $0.hasPrefix("MAIL") })
    }

    func testRequiredStartTLSMissingRefusesBeforeAnyCredentialIsSent() async throws {
        let server = try TestSMTPServer(security: .none, authentication: true, authenticationWithoutTLS: true)
        defer { server.stop() }
        let credentials = SMTPCredentials(username: TestSMTPServer.user, password: TestSMTPServer.password)
        let error = await expectMailError {
            _ = try await self.client(server, security: .startTLS, credentials: credentials, trustTestCA: false).send(self.message())
        }
        XCTAssertEqual(error?.stage, .tls)
        XCTAssertEqual(error?.kind, .tlsUnavailable)
        let verbs = server.commands().map { String($0.prefix(while: { $0 != " " })) }
        XCTAssertEqual(verbs, ["EHLO", "QUIT"], "nothing but EHLO may be sent in clear when STARTTLS is required")
        XCTAssertEqual(server.authenticationLog(), [])
    }

    func testMechanismTheServerDoesNotOfferIsNotTried() async throws {
        let server = try TestSMTPServer(security: .starttls, authentication: true, excludedMechanisms: ["LOGIN"])
        defer { server.stop() }
        let credentials = SMTPCredentials(username: TestSMTPServer.user, password: TestSMTPServer.password, mechanism: .login)
        let error = await expectMailError {
            _ = try await self.client(server, security: .startTLS, credentials: credentials).send(self.message())
        }
        XCTAssertEqual(error?.stage, .authentication)
        XCTAssertEqual(error?.kind, .authenticationUnavailable)
        XCTAssertTrue(error?.message.contains("it offers: PLAIN") ?? false, error?.message ?? "")
        XCTAssertFalse(server.commands().contains { $0.hasPrefix("AUTH") || $0.hasPrefix("MAIL") })
    }

    func testServerCertificateFromAnUntrustedCAIsRefusedByDefault() async throws {
        let server = try TestSMTPServer(security: .tls, authentication: true)
        defer { server.stop() }
        let credentials = SMTPCredentials(username: TestSMTPServer.user, password: TestSMTPServer.password)
        let error = await expectMailError {
            _ = try await self.client(server, security: .tls, credentials: credentials, trustTestCA: false).send(self.message())
        }
        XCTAssertEqual(error?.stage, .tls)
        XCTAssertEqual(error?.kind, .tlsFailed)
        XCTAssertEqual(server.commands(), [])
        XCTAssertEqual(server.authenticationLog(), [])
    }

    func testCredentialsOverAPlainConnectionNeedExplicitPermission() async throws {
        let server = try TestSMTPServer(security: .none, authentication: true, authenticationWithoutTLS: true)
        defer { server.stop() }
        let credentials = SMTPCredentials(username: TestSMTPServer.user, password: TestSMTPServer.password)
        let error = await expectMailError {
            _ = try await self.client(server, security: .none, credentials: credentials).send(self.message())
        }
        XCTAssertEqual(error?.stage, .authentication)
        XCTAssertEqual(error?.kind, .insecureAuthentication)
        XCTAssertEqual(server.commands(), [], "refused before connecting")

        var allowed = client(server, security: .none, credentials: credentials)
        allowed.server.allowsAuthenticationWithoutTLS = true
        _ = try await allowed.send(message())
        XCTAssertEqual(server.authenticationLog(), ["PLAIN accepted"])
    }

    func testRejectedRecipientIsReportedWhileTheOthersReceive() async throws {
        let server = try TestSMTPServer(security: .none)
        defer { server.stop() }
        let delivery = try await client(server, security: .none).send(message(to: ["owner@example.org", "rejected@example.org"]))
        XCTAssertEqual(delivery.accepted.map(\.address), ["owner@example.org"])
        XCTAssertEqual(delivery.rejected.map(\.recipient.address), ["rejected@example.org"])
        XCTAssertEqual(delivery.rejected.first?.reply.code, 550)
        XCTAssertEqual(try server.receivedMessages().onlyElement?.rcpt_tos, ["owner@example.org"])

        let error = await expectMailError {
            _ = try await self.client(server, security: .none).send(self.message(to: ["reject-a@example.org", "reject-b@example.org"]))
        }
        XCTAssertEqual(error?.stage, .recipient)
        XCTAssertEqual(error?.kind, .rejected)
        XCTAssertEqual(error?.rejectedRecipients.map(\.recipient.address), ["reject-a@example.org", "reject-b@example.org"])
        XCTAssertEqual(try server.receivedMessages().count, 1, "nothing is sent when every recipient is refused")
    }

    func testBodyLinesStartingWithDotsArriveIntact() async throws {
        let server = try TestSMTPServer(security: .none)
        defer { server.stop() }
        let body = ".\n..\n.hidden\nmiddle\r\n.\r\n. space\nend"
        _ = try await client(server, security: .none).send(message(body: body))
        let received = try XCTUnwrap(try server.receivedMessages().onlyElement)
        XCTAssertEqual(received.body, ".\n..\n.hidden\nmiddle\n.\n. space\nend\n")
        XCTAssertEqual(received.transfer_encoding, "quoted-printable")
    }

    func testNonASCIISubjectNamesAndBodyAreDecodedByTheReceiver() async throws {
        let server = try TestSMTPServer(security: .none)
        defer { server.stop() }
        let subject = "Служба «redis» на web-01 перезапущена после 3 попыток — всё в порядке ✓ 🚀"
        let body = "Сервис redis снова работает.\nПопыток: 3.\n"
        let sent = try MailMessage(
            from: EmailAddress("flotilla@example.org", displayName: "Überwachung Flotilla"),
            to: [EmailAddress("owner@example.org", displayName: "Jürgen Müller")], subject: subject, body: body)
        _ = try await client(server, security: .none).send(sent)
        let received = try XCTUnwrap(try server.receivedMessages().onlyElement)
        XCTAssertEqual(received.subject, subject)
        XCTAssertEqual(received.from, "Überwachung Flotilla <flotilla@example.org>")
        XCTAssertEqual(received.to, "Jürgen Müller <owner@example.org>")
        XCTAssertEqual(received.body, body)
        XCTAssertEqual(received.transfer_encoding, "base64")
        XCTAssertEqual(received.defects, [])
        XCTAssertTrue(received.raw.utf8.allSatisfy { $0 < 0x80 }, "sent 7-bit")
    }

    func testServerThatRefusesEHLOIsGreetedWithHELO() async throws {
        let server = try TestSMTPServer(security: .none, withoutEHLO: true)
        defer { server.stop() }
        _ = try await client(server, security: .none).send(message())
        let verbs = server.commands().map { String($0.prefix(while: { $0 != " " })) }
        XCTAssertEqual(Array(verbs.prefix(2)), ["EHLO", "HELO"])
        XCTAssertEqual(try server.receivedMessages().count, 1)
    }

    func testServerThatNeverAnswersTimesOutWithinTheDeadline() async throws {
        let silent = try await ScriptedServer(greeting: nil) { _ in nil }
        let client = SMTPClient(
            server: SMTPServer(host: "127.0.0.1", port: silent.port, security: .none),
            timeouts: SMTPTimeouts(connect: .seconds(2), command: .seconds(1), total: .seconds(5)))
        let started = ContinuousClock.now
        let error = await expectMailError { _ = try await client.send(self.message()) }
        let elapsed = ContinuousClock.now - started
        await silent.stop()
        XCTAssertEqual(error?.stage, .greeting)
        XCTAssertEqual(error?.kind, .timeout)
        XCTAssertEqual(error?.isTransient, true)
        XCTAssertLessThan(elapsed, .milliseconds(2500), "took \(elapsed)")
    }

    func testUnansweredConnectTimesOut() async throws {
        let unreachable = try SaturatedListener()
        let client = SMTPClient(
            server: SMTPServer(host: "127.0.0.1", port: unreachable.port, security: .none),
            timeouts: SMTPTimeouts(connect: .milliseconds(500), command: .seconds(5), total: .seconds(10)))
        let started = ContinuousClock.now
        let error = await expectMailError { _ = try await client.send(self.message()) }
        let elapsed = ContinuousClock.now - started
        XCTAssertEqual(error?.stage, .connect)
        XCTAssertEqual(error?.kind, .timeout)
        XCTAssertLessThan(elapsed, .milliseconds(1500), "took \(elapsed)")
    }

    func testCancellingASendClosesTheConnectionAtOnce() async throws {
        let silent = try await ScriptedServer(greeting: nil) { _ in nil }
        let client = SMTPClient(
            server: SMTPServer(host: "127.0.0.1", port: silent.port, security: .none),
            timeouts: SMTPTimeouts(connect: .seconds(2), command: .seconds(30), total: .seconds(60)))
        let sent = try message()
        let send = Task { try await client.send(sent) }
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        send.cancel()
        let result = await send.result
        await silent.stop()
        XCTAssertThrowsError(try result.get()) { XCTAssertTrue($0 is CancellationError, "\($0)") }
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(500))
    }

    func testStalledCommandEndsAtTheWholeSendDeadline() async throws {
        let server = try TestSMTPServer(security: .none)
        defer { server.stop() }
        let client = SMTPClient(
            server: SMTPServer(host: "127.0.0.1", port: server.port, security: .none),
            timeouts: SMTPTimeouts(connect: .seconds(2), command: .seconds(30), total: .milliseconds(1500)))
        let started = ContinuousClock.now
        let error = await expectMailError { _ = try await client.send(self.message(to: ["stall@example.org"])) }
        let elapsed = ContinuousClock.now - started
        XCTAssertEqual(error?.stage, .recipient)
        XCTAssertEqual(error?.kind, .timeout)
        XCTAssertTrue(error?.message.contains("did not finish within 1.5 s") ?? false, error?.message ?? "")
        XCTAssertLessThan(elapsed, .seconds(3), "took \(elapsed)")
    }

    func testPlainTextInjectedAfterStartTLSIsRefused() async throws {
        // A man in the middle appends a reply to the 220: read after the handshake, it would
        // pass for the TLS server's answer (CVE-2011-0411).
        let server = try await ScriptedServer(greeting: "220 scripted ESMTP\r\n") { line in
            if line.hasPrefix("EHLO") { return "250-scripted\r\n250 STARTTLS\r\n" }
            if line == "STARTTLS" { return "220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n" }
            return line == "QUIT" ? "221 bye\r\n" : "500 unexpected\r\n"
        }
        let client = SMTPClient(server: SMTPServer(host: "127.0.0.1", port: server.port, security: .startTLS), timeouts: shortTimeouts)
        let error = await expectMailError { _ = try await client.send(self.message()) }
        await server.stop()
        XCTAssertEqual(error?.stage, .tls)
        XCTAssertEqual(error?.kind, .protocolViolation)
        XCTAssertTrue(error?.message.contains("more data right after agreeing to STARTTLS") ?? false, error?.message ?? "")
    }

    func testRefusedSenderAndRefusedMessageNameTheirStages() async throws {
        let server = try TestSMTPServer(security: .none)
        defer { server.stop() }
        let refusedSender = try MailMessage(
            from: EmailAddress("rejected-sender@example.org"), to: [EmailAddress("owner@example.org")], subject: "s", body: "b")
        let senderError = await expectMailError { _ = try await self.client(server, security: .none).send(refusedSender) }
        XCTAssertEqual(senderError?.stage, .sender)
        XCTAssertEqual(senderError?.kind, .rejected)
        XCTAssertEqual(senderError?.reply?.code, 553)
        XCTAssertEqual(senderError?.isTransient, false)

        let dataError = await expectMailError {
            _ = try await self.client(server, security: .none).send(self.message(to: ["refuse-message@example.org"]))
        }
        XCTAssertEqual(dataError?.stage, .data)
        XCTAssertEqual(dataError?.kind, .rejected)
        XCTAssertEqual(dataError?.reply?.code, 554)
        XCTAssertEqual(dataError?.reply?.lines, ["5.6.0 message refused"])
        XCTAssertEqual(try server.receivedMessages().count, 0)
    }

    func testNothingListeningIsAConnectError() async throws {
        let port = try freeLoopbackPort()
        let client = SMTPClient(server: SMTPServer(host: "127.0.0.1", port: port, security: .none), timeouts: shortTimeouts)
        let error = await expectMailError { _ = try await client.send(self.message()) }
        XCTAssertEqual(error?.stage, .connect)
        XCTAssertEqual(error?.kind, .unreachable)
        XCTAssertEqual(error?.isTransient, true, "a queue retries an unreachable server")
    }
}

extension Array {
    fileprivate var onlyElement: Element? { count == 1 ? self[0] : nil }
}
