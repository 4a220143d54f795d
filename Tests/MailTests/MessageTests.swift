import Foundation
import NIOCore
import XCTest

@testable import Mail

/// Message building and the protocol's byte-level rules, without a server.
final class MessageTests: XCTestCase {
    func testAddressesInTheAcceptedSubsetAreAccepted() throws {
        for address in [
            "owner@example.org", "first.last+tag@sub.example.co.uk", "o'brien@example.org", "x_y-z@a-b.example", "root@localhost",
        ] {
            XCTAssertEqual(try EmailAddress(address).address, address)
        }
    }

    func testMalformedAndHostileAddressesAreRefused() {
        let hostile = [
            "", "plain", "two@@example.org", "a@b@example.org", ".lead@example.org", "trail.@example.org", "dou..ble@example.org",
            "space in@example.org", "quoted\"local\"@example.org", "angle>@example.org", "comma,@example.org", "semi;colon@example.org",
            "owner@example.org\r\nRCPT TO:<victim@example.org>", "owner@example.org\nBcc: victim@example.org", "owner@exa_mple.org",
            "owner@-example.org", "owner@example-.org", "owner@example..org", "owner@[192.0.2.1]", "owner@", "@example.org",
            "jos\u{E9}@example.org", "owner@ex\u{E4}mple.org", "nul\u{0}@example.org", String(repeating: "a", count: 65) + "@example.org",
        ]
        for address in hostile {
            XCTAssertThrowsError(try EmailAddress(address), "accepted \(address.debugDescription)") { error in
                let error = error as? MailError
                XCTAssertEqual(error?.stage, .composition)
                XCTAssertEqual(error?.kind, .invalidInput)
                XCTAssertFalse(error?.message.contains("\r") ?? true, "the error message itself must not carry the line break")
            }
        }
    }

    func testHeaderInjectionThroughSubjectOrDisplayNameIsRefused() throws {
        let from = try EmailAddress("flotilla@example.org")
        let to = try EmailAddress("owner@example.org")
        for subject in [
            "redis restarted\r\nBcc: victim@example.org", "a\nb", "a\rb", "tab\there", "nul\u{0}", "del\u{7F}", "nel\u{85}", "ls\u{2028}x",
        ] {
            XCTAssertThrowsError(try MailMessage(from: from, to: [to], subject: subject, body: "x"), "accepted \(subject.debugDescription)")
            {
                XCTAssertEqual(($0 as? MailError)?.kind, .invalidInput)
                XCTAssertTrue(($0 as? MailError)?.message.contains("subject") ?? false)
            }
        }
        XCTAssertThrowsError(try EmailAddress("owner@example.org", displayName: "Owner\r\nBcc: victim@example.org")) {
            XCTAssertEqual(($0 as? MailError)?.kind, .invalidInput)
        }
        XCTAssertThrowsError(try MailMessage(from: from, to: [], subject: "s", body: "b")) {
            XCTAssertEqual(($0 as? MailError)?.kind, .invalidInput)
        }
    }

    func testRenderedMessageHasTheRFC5322AndMIMEHeaders() throws {
        let message = try MailMessage(
            from: EmailAddress("flotilla@example.org", displayName: "Flotilla monitor"),
            to: [
                EmailAddress("a@example.org"), EmailAddress("b@example.org", displayName: "Ops \"on call\""), EmailAddress("A@example.org"),
            ],
            subject: "redis restarted", body: "line 1\nline 2", date: Date(timeIntervalSince1970: 1_796_286_600))
        let text = String(decoding: message.rendered(), as: UTF8.self)
        let (head, body) = try XCTUnwrap(text.split(separator: "\r\n\r\n", maxSplits: 1).map(String.init).twoParts)
        XCTAssertEqual(
            head.components(separatedBy: "\r\n"),
            [
                "Date: Thu, 03 Dec 2026 08:30:00 +0000",
                "From: \"Flotilla monitor\" <flotilla@example.org>",
                "To: a@example.org, \"Ops \\\"on call\\\"\" <b@example.org>",
                "Subject: redis restarted",
                "Message-ID: \(message.messageID)",
                "MIME-Version: 1.0",
                "Content-Type: text/plain; charset=utf-8",
                "Content-Transfer-Encoding: quoted-printable",
            ])
        XCTAssertEqual(body, "line 1\r\nline 2\r\n")
        XCTAssertEqual(message.to.count, 2, "the same address twice (any case) is one recipient")
        XCTAssertTrue(message.messageID.hasPrefix("<") && message.messageID.hasSuffix("@example.org>"))
    }

    func testABodyEndingWithALineBreakGetsNoExtraEmptyLine() throws {
        for (body, expected) in [("done\n", "done\r\n"), ("done", "done\r\n"), ("", "\r\n"), ("two\n\n", "two\r\n\r\n")] {
            let message = try MailMessage(
                from: EmailAddress("a@example.org"), to: [EmailAddress("b@example.org")], subject: "s", body: body)
            let text = String(decoding: message.rendered(), as: UTF8.self)
            XCTAssertEqual(
                text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n"), expected, body.debugDescription)
        }
    }

    func testEveryLineIsSevenBitCRLFAndAtMost78CharactersInHeaders() throws {
        let subject = String(repeating: "Dienst \u{201E}redis\u{201C} auf web-01 neu gestartet \u{2014} ", count: 4) + "\u{1F680}"
        let message = try MailMessage(
            from: EmailAddress("flotilla@example.org", displayName: "Überwachung"),
            to: (1...8).map { try EmailAddress("owner\($0)@example.org", displayName: "Owner number \($0)") },
            subject: subject, body: String(repeating: "é", count: 300) + "\r\nsecond\rthird\nfourth")
        let bytes = message.rendered()
        XCTAssertTrue(bytes.allSatisfy { $0 < 0x80 }, "the message must be 7-bit")
        let text = String(decoding: bytes, as: UTF8.self)
        XCTAssertFalse(text.replacingOccurrences(of: "\r\n", with: "").contains("\r"), "a lone CR")
        XCTAssertFalse(text.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "a lone LF")
        let head = try XCTUnwrap(text.components(separatedBy: "\r\n\r\n").first)
        for line in head.components(separatedBy: "\r\n") {
            XCTAssertLessThanOrEqual(line.count, 78, line)
            XCTAssertFalse(line.trimmingCharacters(in: .whitespaces).isEmpty, "a folded line of only whitespace")
        }
        XCTAssertTrue(head.contains("Content-Transfer-Encoding: base64"), "mostly non-ASCII text goes in base64")
    }

    func testQuotedPrintableEncodesWhatMustBeEncodedAndKeepsLinesShort() {
        let lines = MIMEEncoding.lines(of: "a=b trailing \nnaïve\r\n\(String(repeating: "x", count: 100))".utf8)
        let encoded = MIMEEncoding.quotedPrintable(lines)
        let expected = [
            "a=3Db trailing=20", "na=C3=AFve", String(repeating: "x", count: 75) + "=", String(repeating: "x", count: 25),
        ]
        XCTAssertEqual(encoded.components(separatedBy: "\r\n"), expected)
    }

    func testDataPayloadStuffsDotsAndNormalisesLineEnds() {
        let payload = dataPayload(Array(".\r\n..two\nthree\r.four\r\nlast".utf8), allocator: ByteBufferAllocator())
        XCTAssertEqual(String(buffer: payload), "..\r\n...two\r\nthree\r\n..four\r\nlast\r\n.\r\n")
        XCTAssertEqual(String(buffer: dataPayload(Array("a\r\n".utf8), allocator: ByteBufferAllocator())), "a\r\n.\r\n")
    }

    func testRepliesAreParsedAcrossReadsAndMultipleLines() throws {
        var parser = SMTPReplyParser()
        var buffer = ByteBuffer(string: "250-mail.example.org\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n25")
        XCTAssertNil(try parser.nextReply(from: &buffer))
        buffer.writeString("0 SIZE 1000\r\n220 ready\r\n")
        let ehlo = try XCTUnwrap(try parser.nextReply(from: &buffer))
        XCTAssertEqual(ehlo.code, 250)
        XCTAssertEqual(ehlo.lines, ["mail.example.org", "STARTTLS", "AUTH PLAIN LOGIN", "SIZE 1000"])
        let capabilities = Capabilities(ehlo)
        XCTAssertTrue(capabilities.keywords.contains("STARTTLS"))
        XCTAssertEqual(capabilities.authenticationMechanisms, ["PLAIN", "LOGIN"])
        XCTAssertEqual(try parser.nextReply(from: &buffer), SMTPReply(code: 220, lines: ["ready"]))
        var bare = ByteBuffer(string: "354\n")
        XCTAssertEqual(try parser.nextReply(from: &bare), SMTPReply(code: 354, lines: [""]))
    }

    func testMalformedRepliesAreProtocolViolations() {
        for bad in ["hello\r\n", "250-first\r\n251 second\r\n", "2500 x\r\n", "099 x\r\n", String(repeating: "2", count: 5000)] {
            var parser = SMTPReplyParser()
            var buffer = ByteBuffer(string: bad)
            XCTAssertThrowsError(try parser.nextReply(from: &buffer), "accepted \(bad.prefix(40).debugDescription)")
        }
    }

    func testServerTextIsShownWithoutControlCharacters() throws {
        var parser = SMTPReplyParser()
        var buffer = ByteBuffer(string: "550 no\u{1B}[31m such\rX user\r\n")
        XCTAssertEqual(try parser.nextReply(from: &buffer)?.lines, ["no?[31m such?X user"])
    }

    func testCredentialsNeverAppearInTheirDescription() {
        let credentials = SMTPCredentials(username: "notifier", password: "hunter2")
        XCTAssertFalse("\(credentials)".contains("hunter2"))
    }
}

extension Array {
    fileprivate var twoParts: (Element, Element)? { count == 2 ? (self[0], self[1]) : nil }
}
