import Foundation

/// A plain-text e-mail, checked when it is made: every value that reaches a header is free of
/// line breaks and control characters, so a message cannot carry an injected header.
public struct MailMessage: Sendable {
    public let from: EmailAddress
    /// The recipients, each once, in the order given (they are also the SMTP envelope's).
    public let to: [EmailAddress]
    public let subject: String
    /// Any text; line breaks of any style become CRLF.
    public let body: String
    public let date: Date
    /// `<unique@sender-domain>`, made when the message is made.
    public let messageID: String

    /// Throws `MailError` (stage `.composition`, kind `.invalidInput`) for a message without
    /// recipients or a subject with control characters or line breaks.
    public init(from: EmailAddress, to: [EmailAddress], subject: String, body: String, date: Date = Date()) throws {
        guard !to.isEmpty else {
            throw MailError(.composition, .invalidInput, message: "a message needs at least one recipient")
        }
        try checkNoControlCharacters(subject, field: "subject")
        guard subject.utf8.count <= 998 else {
            throw MailError(.composition, .invalidInput, message: "the subject is longer than 998 bytes")
        }
        var seen = Set<String>()
        self.to = to.filter { seen.insert($0.address.lowercased()).inserted }
        self.from = from
        self.subject = subject
        self.body = body
        self.date = date
        self.messageID = "<\(UUID().uuidString.lowercased())@\(from.domain)>"
    }

    /// The message as sent after DATA (before dot-stuffing): 7-bit, CRLF line ends, headers
    /// folded, body in quoted-printable, or base64 when most of it would need escaping.
    public func rendered() -> [UInt8] {
        let lines = MIMEEncoding.lines(of: body.utf8)
        let byteCount = lines.reduce(0) { $0 + $1.count }
        let useBase64 = MIMEEncoding.escapedByteCount(lines) * 4 > byteCount
        let recipients = to.enumerated().flatMap { index, mailbox in
            var words = MIMEEncoding.mailboxWords(mailbox)
            if index < to.count - 1 { words[words.count - 1] += "," }
            return words
        }
        let headers = [
            "Date: " + Self.rfc5322Date(date),
            MIMEEncoding.header("From", words: MIMEEncoding.mailboxWords(from)),
            MIMEEncoding.header("To", words: recipients),
            MIMEEncoding.header("Subject", words: MIMEEncoding.unstructuredWords(subject)),
            "Message-ID: " + messageID,
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: " + (useBase64 ? "base64" : "quoted-printable"),
        ]
        let encodedBody = useBase64 ? MIMEEncoding.base64(lines) : MIMEEncoding.quotedPrintable(lines)
        // A body that ends with a line break already ends in CRLF: another would add an empty line.
        let end = encodedBody.hasSuffix("\r\n") ? "" : "\r\n"
        return Array((headers.joined(separator: "\r\n") + "\r\n\r\n" + encodedBody + end).utf8)
    }

    /// `Thu, 03 Dec 2026 08:30:00 +0000` (RFC 5322 3.3), always in UTC.
    static func rfc5322Date(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int?) -> String { String(format: "%02d", value ?? 0) }
        return "\(weekdays[(parts.weekday ?? 1) - 1]), \(two(parts.day)) \(months[(parts.month ?? 1) - 1]) \(parts.year ?? 1970) "
            + "\(two(parts.hour)):\(two(parts.minute)):\(two(parts.second)) +0000"
    }
}
