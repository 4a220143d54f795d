/// A streaming, namespace-aware XML parser for SOAP responses, reading UTF-8 bytes straight
/// into a light `SOAPElement` tree. Written for speed (a 1,000-VM listing is ~1 MB) and for
/// exact namespace handling: every prefix is resolved to its URI while parsing.
/// It can be fed a response chunk by chunk as it downloads, and can hand over elements at a
/// given path as soon as they are complete, so a large answer never exists as a whole.
/// DTDs are refused (SOAP forbids them), which also rules out entity-expansion attacks.
public struct XMLDocumentParser {
    public struct Failure: Error, CustomStringConvertible {
        public var message: String
        public var offset: Int
        public var description: String { "XML error at byte \(offset): \(message)" }
    }

    /// The input ended inside a token: wait for more bytes (or fail, at the real end).
    private struct Incomplete: Error {}

    /// Unconsumed input; consumed bytes are dropped after each `feed`.
    private var bytes: [UInt8] = []
    private var position = 0
    /// Bytes dropped so far, for error offsets.
    private var consumed = 0
    private var stack: [OpenElement] = []
    private var root: SOAPElement?
    /// Namespace bindings in scope, innermost last; each open element remembers where its own start.
    private var bindings: [(prefix: String, uri: String)] = [("xml", "http://www.w3.org/XML/1998/namespace")]
    /// Ancestors' local names of the elements handed over instead of kept (nil: keep everything).
    private let streamPath: [String]?

    /// Parses a whole document and returns its root element.
    public static func parse(_ bytes: [UInt8]) throws -> SOAPElement {
        var parser = XMLDocumentParser(streaming: nil)
        parser.bytes = bytes
        return try parser.finish { _ in }
    }

    public static func parse(_ text: String) throws -> SOAPElement {
        try parse(Array(text.utf8))
    }

    /// - Parameter path: elements whose ancestors have these local names, from the root, go to
    ///   the handler of `feed`/`finish` instead of into the tree (nil: keep everything).
    public init(streaming path: [String]?) {
        streamPath = path
    }

    /// Parses as much of the input as is complete; the rest waits for the next chunk.
    public mutating func feed(_ chunk: [UInt8], to handler: (SOAPElement) throws -> Void) throws {
        bytes.append(contentsOf: chunk)
        try run(final: false, handler)
    }

    /// Parses what is left at the end of the input and returns the root element.
    public mutating func finish(to handler: (SOAPElement) throws -> Void) throws -> SOAPElement {
        try run(final: true, handler)
        guard let root else { throw failure("no root element") }
        return root
    }

    private struct OpenElement {
        var prefix: String
        var localName: String
        var rawAttributes: [(name: String, value: String)]
        var children: [SOAPElement] = []
        var text: String = ""
        var bindingCount: Int
    }

    private mutating func run(final: Bool, _ handler: (SOAPElement) throws -> Void) throws {
        while position < bytes.count, root == nil {
            let tokenStart = position
            let bindingCount = bindings.count
            do {
                try parseToken(final: final, handler)
            } catch is Incomplete {
                if final { throw failure("unexpected end of the document") }
                position = tokenStart
                bindings.removeSubrange(bindingCount...)
                break
            }
        }
        if position > 0 {
            bytes.removeSubrange(0..<position)
            consumed += position
            position = 0
        }
    }

    /// One token: text, a start or end tag, a comment, CDATA or a processing instruction.
    private mutating func parseToken(final: Bool, _ handler: (SOAPElement) throws -> Void) throws {
        if bytes[position] != UInt8(ascii: "<") {
            let text = try readText(final: final)
            if !stack.isEmpty {
                stack[stack.count - 1].text += text
            } else if text.contains(where: { !$0.isWhitespace }) {
                throw failure("text outside the root element")
            }
            return
        }
        guard position + 1 < bytes.count else { throw Incomplete() }
        switch bytes[position + 1] {
        case UInt8(ascii: "?"):
            try skip(past: "?>")
        case UInt8(ascii: "!"):
            guard final || position + 9 <= bytes.count else { throw Incomplete() }
            if matches("<!--") {
                try skip(past: "-->")
            } else if matches("<![CDATA[") {
                let start = position + 9
                position = start
                try skip(past: "]]>")
                guard !stack.isEmpty else { throw failure("CDATA outside the root element") }
                stack[stack.count - 1].text += String(decoding: bytes[start..<(position - 3)], as: UTF8.self)
            } else {
                throw failure("DTDs are not accepted")
            }
        case UInt8(ascii: "/"):
            position += 2
            let closing = try readName()
            skipWhitespace()
            try expect(UInt8(ascii: ">"))
            guard let open = stack.popLast() else { throw failure("unbalanced </\(closing)>") }
            let qualifiedOpen = open.prefix.isEmpty ? open.localName : open.prefix + ":" + open.localName
            guard qualifiedOpen == closing else { throw failure("</\(closing)> closes <\(qualifiedOpen)>") }
            try place(try complete(open), handler)
        default:
            position += 1
            let (open, selfClosing) = try readStartTag()
            if selfClosing {
                try place(try complete(open), handler)
            } else {
                stack.append(open)
            }
        }
    }

    /// A completed element becomes the root, goes to the handler, or joins its parent.
    private mutating func place(_ element: SOAPElement, _ handler: (SOAPElement) throws -> Void) throws {
        if stack.isEmpty {
            root = element
        } else if let streamPath, Self.stack(stack, matches: streamPath) {
            try handler(element)
        } else {
            stack[stack.count - 1].children.append(element)
        }
    }

    private static func stack(_ stack: [OpenElement], matches path: [String]) -> Bool {
        guard stack.count == path.count, stack[stack.count - 1].localName == path[path.count - 1] else { return false }
        return zip(stack, path).allSatisfy { $0.localName == $1 }
    }

    /// Reads `name attr="v" ...>` after the `<`, registering namespace declarations.
    private mutating func readStartTag() throws -> (OpenElement, Bool) {
        let qualified = try readName()
        guard !qualified.isEmpty else { throw failure("missing element name") }
        let bindingCount = bindings.count
        var attributes: [(name: String, value: String)] = []
        while true {
            skipWhitespace()
            guard position < bytes.count else { throw Incomplete() }
            let byte = bytes[position]
            if byte == UInt8(ascii: ">") {
                position += 1
                let (prefix, local) = split(qualified)
                return (OpenElement(prefix: prefix, localName: local, rawAttributes: attributes, bindingCount: bindingCount), false)
            }
            if byte == UInt8(ascii: "/") {
                position += 1
                try expect(UInt8(ascii: ">"))
                let (prefix, local) = split(qualified)
                return (OpenElement(prefix: prefix, localName: local, rawAttributes: attributes, bindingCount: bindingCount), true)
            }
            let name = try readName()
            guard !name.isEmpty else { throw failure("bad attribute in <\(qualified)>") }
            skipWhitespace()
            try expect(UInt8(ascii: "="))
            skipWhitespace()
            let value = try readQuoted()
            if name == "xmlns" {
                bindings.append(("", value))
            } else if name.hasPrefix("xmlns:") {
                bindings.append((String(name.dropFirst(6)), value))
            } else {
                attributes.append((name, value))
            }
        }
    }

    /// Resolves the element's and attributes' prefixes, then drops its namespace scope.
    private mutating func complete(_ open: OpenElement) throws -> SOAPElement {
        defer { bindings.removeSubrange(open.bindingCount...) }
        let namespace = try resolve(prefix: open.prefix)
        var attributes: [SOAPElement.Attribute] = []
        attributes.reserveCapacity(open.rawAttributes.count)
        var schemaType: QualifiedName?
        for (rawName, value) in open.rawAttributes {
            let (prefix, local) = split(rawName)
            let attributeNamespace = prefix.isEmpty ? nil : try resolve(prefix: prefix)
            let name = QualifiedName(namespace: attributeNamespace, name: local)
            if attributeNamespace == XMLNamespace.schemaInstance && local == "type" {
                let (typePrefix, typeLocal) = split(value)
                schemaType = QualifiedName(namespace: try resolve(prefix: typePrefix), name: typeLocal)
            }
            attributes.append(SOAPElement.Attribute(name: name, value: value))
        }
        return SOAPElement(
            name: QualifiedName(namespace: namespace, name: open.localName),
            attributes: attributes,
            schemaType: schemaType,
            children: open.children,
            text: open.children.isEmpty ? open.text : (open.text.allSatisfy(\.isWhitespace) ? "" : open.text)
        )
    }

    private func resolve(prefix: String) throws -> String? {
        for binding in bindings.reversed() where binding.prefix == prefix {
            return binding.uri.isEmpty ? nil : binding.uri
        }
        if prefix.isEmpty { return nil }
        throw failure("undeclared namespace prefix \(prefix)")
    }

    private func split(_ qualified: String) -> (prefix: String, local: String) {
        guard let colon = qualified.firstIndex(of: ":") else { return ("", qualified) }
        return (String(qualified[..<colon]), String(qualified[qualified.index(after: colon)...]))
    }

    /// Reads up to a delimiter; running into the end of the input means the name may go on.
    private mutating func readName() throws -> String {
        let start = position
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"),
                UInt8(ascii: ">"), UInt8(ascii: "/"), UInt8(ascii: "="):
                return String(decoding: bytes[start..<position], as: UTF8.self)
            default:
                position += 1
            }
        }
        throw Incomplete()
    }

    private mutating func readQuoted() throws -> String {
        guard position < bytes.count else { throw Incomplete() }
        guard bytes[position] == UInt8(ascii: "\"") || bytes[position] == UInt8(ascii: "'") else {
            throw failure("attribute value must be quoted")
        }
        let quote = bytes[position]
        position += 1
        let start = position
        while position < bytes.count, bytes[position] != quote { position += 1 }
        guard position < bytes.count else { throw Incomplete() }
        let raw = bytes[start..<position]
        position += 1
        return try decodeEntities(raw)
    }

    /// Text up to the next tag; at the end of a chunk it may go on in the next one.
    private mutating func readText(final: Bool) throws -> String {
        let start = position
        while position < bytes.count, bytes[position] != UInt8(ascii: "<") { position += 1 }
        if position == bytes.count, !final { throw Incomplete() }
        return try decodeEntities(bytes[start..<position])
    }

    private func decodeEntities(_ raw: ArraySlice<UInt8>) throws -> String {
        guard raw.contains(UInt8(ascii: "&")) else { return String(decoding: raw, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var index = raw.startIndex
        while index < raw.endIndex {
            let byte = raw[index]
            guard byte == UInt8(ascii: "&") else {
                out.append(byte)
                index += 1
                continue
            }
            guard let semicolon = raw[index...].firstIndex(of: UInt8(ascii: ";")) else { throw failure("unterminated entity") }
            let entity = String(decoding: raw[(index + 1)..<semicolon], as: UTF8.self)
            switch entity {
            case "lt": out.append(UInt8(ascii: "<"))
            case "gt": out.append(UInt8(ascii: ">"))
            case "amp": out.append(UInt8(ascii: "&"))
            case "quot": out.append(UInt8(ascii: "\""))
            case "apos": out.append(UInt8(ascii: "'"))
            default:
                let scalarValue: UInt32?
                if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                    scalarValue = UInt32(entity.dropFirst(2), radix: 16)
                } else if entity.hasPrefix("#") {
                    scalarValue = UInt32(entity.dropFirst())
                } else {
                    scalarValue = nil
                }
                guard let scalarValue, let scalar = Unicode.Scalar(scalarValue) else { throw failure("unknown entity &\(entity);") }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            }
            index = semicolon + 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func matches(_ literal: String) -> Bool {
        var index = position
        for byte in literal.utf8 {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
        }
        return true
    }

    private mutating func skip(past terminator: String) throws {
        let pattern = Array(terminator.utf8)
        while position + pattern.count <= bytes.count {
            if bytes[position] == pattern[0], bytes[position..<(position + pattern.count)].elementsEqual(pattern) {
                position += pattern.count
                return
            }
            position += 1
        }
        throw Incomplete()
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): position += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8) throws {
        guard position < bytes.count else { throw Incomplete() }
        guard bytes[position] == byte else {
            throw failure("expected '\(Character(Unicode.Scalar(byte)))'")
        }
        position += 1
    }

    private func failure(_ message: String) -> Failure {
        Failure(message: message, offset: consumed + position)
    }
}
