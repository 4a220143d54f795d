import Foundation
import NIOCore
import Vapor

/// JSON for the hot API lists (issue 8 §5), written field by field into the response buffer.
///
/// `JSONEncoder` walks every value through `Encodable`'s containers; for a list of 100 rows that
/// was a fifth of the request's CPU time in `perf`. The writer produces what the server's
/// `JSONEncoder` (ISO 8601 dates, escaped slashes) produces for the same values: nil fields are
/// left out, UUIDs are upper case, whole doubles have no fraction (`JSONWriterTests` compares the
/// two for each type written this way).
struct JSONWriter {
    private(set) var buffer: ByteBuffer
    /// Whether the next value is the first in its object or array (no comma before it).
    private var first = true

    init(capacity: Int = 1024) {
        buffer = ByteBufferAllocator().buffer(capacity: capacity)
    }

    mutating func object(_ body: (inout JSONWriter) throws -> Void) rethrows {
        separate()
        buffer.writeInteger(UInt8(ascii: "{"))
        first = true
        try body(&self)
        buffer.writeInteger(UInt8(ascii: "}"))
        first = false
    }

    mutating func array<Items: Sequence>(_ items: Items, _ element: (inout JSONWriter, Items.Element) throws -> Void) rethrows {
        separate()
        buffer.writeInteger(UInt8(ascii: "["))
        first = true
        for item in items { try element(&self, item) }
        buffer.writeInteger(UInt8(ascii: "]"))
        first = false
    }

    /// Starts a field of the current object; the value written next belongs to it.
    mutating func key(_ name: StaticString) {
        separate()
        buffer.writeInteger(UInt8(ascii: "\""))
        buffer.writeStaticString(name)
        buffer.writeStaticString("\":")
        first = true
    }

    mutating func string(_ value: String) {
        separate()
        buffer.writeInteger(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { bytes in
            // Runs of plain bytes are copied at once; only the bytes that need it are escaped.
            var plainFrom = bytes.startIndex
            for index in bytes.indices where Self.needsEscape(bytes[index]) {
                buffer.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[plainFrom..<index])))
                writeEscaped(bytes[index])
                plainFrom = index + 1
            }
            buffer.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[plainFrom...])))
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    /// Upper-case hex in 8-4-4-4-12 groups, as `UUID.uuidString`.
    mutating func uuid(_ value: UUID) {
        separate()
        buffer.writeInteger(UInt8(ascii: "\""))
        withUnsafeBytes(of: value.uuid) { bytes in
            for (index, byte) in bytes.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 { buffer.writeInteger(UInt8(ascii: "-")) }
                buffer.writeInteger(Self.upperHexDigits[Int(byte >> 4)])
                buffer.writeInteger(Self.upperHexDigits[Int(byte & 0x0F)])
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    mutating func integer(_ value: some BinaryInteger) {
        separate()
        buffer.writeString(String(value))
    }

    /// As `JSONEncoder` writes a double: its description without a trailing `.0`.
    mutating func double(_ value: Double) {
        separate()
        let text = value.description
        buffer.writeString(text.hasSuffix(".0") ? String(text.dropLast(2)) : text)
    }

    mutating func bool(_ value: Bool) {
        separate()
        buffer.writeStaticString(value ? "true" : "false")
    }

    // Fields: a nil value leaves the field out, as `Encodable`'s synthesized `encodeIfPresent` does.

    mutating func field(_ name: StaticString, _ value: String?) {
        guard let value else { return }
        key(name)
        string(value)
    }

    mutating func field(_ name: StaticString, _ value: UUID?) {
        guard let value else { return }
        key(name)
        uuid(value)
    }

    mutating func field(_ name: StaticString, _ value: Date?) {
        guard let value else { return }
        key(name)
        string(value.formatted(.iso8601))
    }

    mutating func field(_ name: StaticString, _ value: Int?) {
        guard let value else { return }
        key(name)
        integer(value)
    }

    mutating func field(_ name: StaticString, _ value: UInt64?) {
        guard let value else { return }
        key(name)
        integer(value)
    }

    mutating func field(_ name: StaticString, _ value: Double?) {
        guard let value else { return }
        key(name)
        double(value)
    }

    mutating func field(_ name: StaticString, _ value: Bool?) {
        guard let value else { return }
        key(name)
        bool(value)
    }

    /// A `200 OK` with the written JSON.
    func response() -> Response {
        Response(status: .ok, headers: ["Content-Type": "application/json; charset=utf-8"], body: .init(buffer: buffer))
    }

    private mutating func separate() {
        if first {
            first = false
        } else {
            buffer.writeInteger(UInt8(ascii: ","))
        }
    }

    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "/")
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
    private static let upperHexDigits = Array("0123456789ABCDEF".utf8)

    private mutating func writeEscaped(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
        case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
        case UInt8(ascii: "/"): buffer.writeStaticString("\\/")
        case 0x08: buffer.writeStaticString("\\b")
        case 0x0C: buffer.writeStaticString("\\f")
        case 0x0A: buffer.writeStaticString("\\n")
        case 0x0D: buffer.writeStaticString("\\r")
        case 0x09: buffer.writeStaticString("\\t")
        case ..<0x20:
            buffer.writeStaticString("\\u00")
            buffer.writeInteger(Self.hexDigits[Int(byte >> 4)])
            buffer.writeInteger(Self.hexDigits[Int(byte & 0x0F)])
        default: buffer.writeInteger(byte)
        }
    }
}

/// A value the hot lists write with `JSONWriter`, as one JSON object.
protocol JSONWritable: Sendable {
    func write(to json: inout JSONWriter)
}

extension ListResponse where Item: JSONWritable {
    /// `{"items":[…],"total":N,"page":P,"per":K}`, written by `JSONWriter`.
    func writtenResponse() -> Response {
        var json = JSONWriter(capacity: 256 + items.count * 256)
        json.object { json in
            json.key("items")
            json.array(items) { json, item in item.write(to: &json) }
            json.field("total", total)
            json.field("page", page)
            json.field("per", per)
        }
        return json.response()
    }
}
