import NIOCore

/// One SMTP reply: its three-digit code and its text lines (one line, or several for a
/// multi-line reply such as the answer to EHLO), as the server sent them without the code.
public struct SMTPReply: Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var lines: [String]

    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    /// `code text`, lines joined with " / ".
    public var description: String { "\(code) \(lines.joined(separator: " / "))" }
}

/// Splits the bytes a server sends into replies (RFC 5321 4.2): lines `ddd-text` continue a
/// reply, `ddd text` (or a bare `ddd`) ends it, and every line of a reply repeats its code.
/// Anything else is a protocol violation, and so is a line or reply too long to be SMTP,
/// so a hostile server cannot make the client buffer without end.
struct SMTPReplyParser {
    /// RFC 5321 allows 512 octets per reply line; servers exceed it in their text now and then.
    static let maximumLineLength = 4096
    static let maximumLines = 256

    private var code: Int?
    private var lines: [String] = []

    /// The next complete reply in `buffer` (consuming it), or nil when more bytes are needed.
    mutating func nextReply(from buffer: inout ByteBuffer) throws(ReplyFormatError) -> SMTPReply? {
        while let line = try nextLine(from: &buffer) {
            let bytes = Array(line.utf8)
            guard bytes.count >= 3, bytes[0..<3].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                let lineCode = Int(String(decoding: bytes[0..<3], as: UTF8.self)), (200..<600).contains(lineCode)
            else {
                throw ReplyFormatError(message: "reply line does not start with a reply code: \(printable(line))")
            }
            if let code, code != lineCode {
                throw ReplyFormatError(message: "multi-line reply changed its code from \(code) to \(lineCode)")
            }
            let separator = bytes.count > 3 ? bytes[3] : UInt8(ascii: " ")
            guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else {
                throw ReplyFormatError(message: "reply code not followed by a space or hyphen: \(printable(line))")
            }
            code = lineCode
            lines.append(printable(String(line.dropFirst(min(4, line.count)))))
            guard lines.count <= Self.maximumLines else {
                throw ReplyFormatError(message: "reply longer than \(Self.maximumLines) lines")
            }
            if separator == UInt8(ascii: " ") {
                let reply = SMTPReply(code: lineCode, lines: lines)
                self.code = nil
                lines = []
                return reply
            }
        }
        return nil
    }

    /// The next CRLF-terminated line (a bare LF is accepted too), without its terminator.
    private func nextLine(from buffer: inout ByteBuffer) throws(ReplyFormatError) -> String? {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            guard view.count <= Self.maximumLineLength else {
                throw ReplyFormatError(message: "reply line longer than \(Self.maximumLineLength) bytes")
            }
            return nil
        }
        let length = newline - view.startIndex
        guard length <= Self.maximumLineLength else {
            throw ReplyFormatError(message: "reply line longer than \(Self.maximumLineLength) bytes")
        }
        var line = buffer.readSlice(length: length + 1)!
        line.moveWriterIndex(to: line.writerIndex - 1)
        if line.readableBytesView.last == UInt8(ascii: "\r") {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        return String(buffer: line)
    }
}

struct ReplyFormatError: Error {
    var message: String
}

/// The text with control characters replaced, so a server's text cannot forge log lines or
/// headers wherever an error message is shown.
func printable(_ text: String) -> String {
    String(String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : $0 }))
}
