/// Builds request XML. Values reach the wire only through `SOAPEncodable`, so every text is escaped.
public struct XMLWriter: Sendable {
    public private(set) var output: String = ""

    public init() {
        output.reserveCapacity(1024)
    }

    /// Writes `<name attributes>content</name>`.
    public mutating func element(_ name: String, attributes: [(String, String)] = [], content: (inout XMLWriter) -> Void) {
        output += "<"
        output += name
        for (key, value) in attributes {
            output += " \(key)=\""
            output += XMLWriter.escape(value)
            output += "\""
        }
        output += ">"
        content(&self)
        output += "</"
        output += name
        output += ">"
    }

    /// Writes `<name>text</name>`.
    public mutating func element(_ name: String, text: String, attributes: [(String, String)] = []) {
        element(name, attributes: attributes) { $0.text(text) }
    }

    public mutating func text(_ text: String) {
        output += XMLWriter.escape(text)
    }

    static func escape(_ text: String) -> String {
        guard
            text.utf8.contains(where: {
                $0 == UInt8(ascii: "<") || $0 == UInt8(ascii: ">") || $0 == UInt8(ascii: "&") || $0 == UInt8(ascii: "\"")
                    || $0 == UInt8(ascii: "'")
            })
        else {
            return text
        }
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count + 16)
        for character in text {
            switch character {
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "&": escaped += "&amp;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&apos;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
