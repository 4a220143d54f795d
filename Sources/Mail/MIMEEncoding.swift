import Foundation

/// The encodings that keep a message 7-bit clean with CRLF line ends, whatever text it carries:
/// RFC 2045 quoted-printable and base64 bodies, RFC 2047 encoded words in headers, and RFC 5322
/// folding of long header lines.
enum MIMEEncoding {
    /// A header line should stay within 78 characters (RFC 5322 2.1.1).
    static let preferredLineLength = 78

    /// The bytes (UTF-8 text) split at every line break: CRLF, lone CR or lone LF.
    static func lines(of text: some Sequence<UInt8>) -> [[UInt8]] {
        var lines: [[UInt8]] = [[]]
        var previousWasCR = false
        for byte in text {
            switch byte {
            case UInt8(ascii: "\r"):
                lines.append([])
                previousWasCR = true
                continue
            case UInt8(ascii: "\n"):
                if !previousWasCR { lines.append([]) }
            default:
                lines[lines.count - 1].append(byte)
            }
            previousWasCR = false
        }
        return lines
    }

    /// Quoted-printable (RFC 2045 6.7): lines of at most 76 characters, `=` and bytes outside
    /// printable ASCII as `=XX`, whitespace before a line end encoded, soft breaks as `=`.
    static func quotedPrintable(_ lines: [[UInt8]]) -> String {
        var output: [String] = []
        for line in lines {
            var current = ""
            for (index, byte) in line.enumerated() {
                let isLast = index == line.count - 1
                let literal =
                    (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "="))
                    || ((byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")) && !isLast)
                let token = literal ? String(UnicodeScalar(byte)) : "=" + hexByte(byte)
                if current.count + token.count > (isLast ? 76 : 75) {
                    output.append(current + "=")
                    current = ""
                }
                current += token
            }
            output.append(current)
        }
        return output.joined(separator: "\r\n")
    }

    /// How many bytes of the lines quoted-printable would have to escape.
    static func escapedByteCount(_ lines: [[UInt8]]) -> Int {
        lines.reduce(0) { count, line in count + line.count(where: { $0 < 32 || $0 > 126 || $0 == UInt8(ascii: "=") }) }
    }

    /// Base64 (RFC 2045 6.8) of the lines joined by CRLF, in lines of 76 characters.
    static func base64(_ lines: [[UInt8]]) -> String {
        let bytes = Array(lines.joined(separator: [UInt8(ascii: "\r"), UInt8(ascii: "\n")]))
        return Data(bytes).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
    }

    /// RFC 2047 B-encoded words of UTF-8 text, each carrying whole characters and short enough
    /// that a header line of one word stays near 78 characters.
    static func encodedWords(_ text: String) -> [String] {
        let maximumBytes = 39  // 52 characters of base64, 64 with the "=?utf-8?B?" ... "?=" frame
        var chunks: [[UInt8]] = [[]]
        func append(_ piece: [UInt8]) {
            if chunks[chunks.count - 1].count + piece.count > maximumBytes, !chunks[chunks.count - 1].isEmpty {
                chunks.append([])
            }
            chunks[chunks.count - 1] += piece
        }
        for character in text {
            let bytes = Array(character.utf8)
            if bytes.count <= maximumBytes {
                append(bytes)
            } else {
                // A very long grapheme cluster (emoji sequences): split between its scalars.
                character.unicodeScalars.forEach { append(Array(String($0).utf8)) }
            }
        }
        return chunks.filter { !$0.isEmpty }.map { "=?utf-8?B?" + Data($0).base64EncodedString() + "?=" }
    }

    /// Free text (a subject) as header words: as it is when it is printable ASCII that cannot be
    /// mistaken for encoded words, otherwise as encoded words.
    static func unstructuredWords(_ text: String) -> [String] {
        let words = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let plain =
            text.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F }
            && !text.contains("=?") && words.allSatisfy { $0.count <= preferredLineLength - 10 }
        return plain ? words : encodedWords(text)
    }

    /// A mailbox as header words: `"Display Name" <local@domain>`, or the bare address.
    static func mailboxWords(_ mailbox: EmailAddress) -> [String] {
        guard let name = mailbox.displayName else { return [mailbox.address] }
        let phrase: [String]
        if name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) && !name.contains("=?") {
            let escaped = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            phrase = ("\"" + escaped + "\"").split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        } else {
            phrase = encodedWords(name)
        }
        return phrase + ["<\(mailbox.address)>"]
    }

    /// `Name: word word ...` with CRLF + space inserted between words where a line would pass
    /// 78 characters (never before an empty word, so no line is only whitespace).
    static func header(_ name: String, words: [String]) -> String {
        var result = name + ":"
        var lineLength = result.count
        var wordsOnLine = 0
        for word in words {
            if lineLength + 1 + word.count > preferredLineLength, !word.isEmpty, wordsOnLine > 0 {
                result += "\r\n"
                lineLength = 0
                wordsOnLine = 0
            }
            result += " " + word
            lineLength += 1 + word.count
            wordsOnLine += 1
        }
        return result
    }

    private static func hexByte(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}
