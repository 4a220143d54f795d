import Foundation
import XCTVapor

/// A JSON value as it was written: booleans, integers and other numbers stay apart (Foundation's
/// `JSONSerialization` hands all three back as `NSNumber`, so a `1` would pass for `true`).
indirect enum JSONValue: Decodable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    static func parse(_ data: Data) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: data)
    }

    subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var description: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return String(value)
        case .integer(let value): return String(value)
        case .number(let value): return String(value)
        case .string(let value): return "\"\(value)\""
        case .array(let values): return "[\(values.count) items]"
        case .object(let members): return "{\(members.keys.sorted().joined(separator: ", "))}"
        }
    }
}

/// Checks JSON answers against the schemas of an OpenAPI 3.0 document, for the parts of
/// JSON Schema the Flotilla document uses: `$ref`, `type`, `nullable`, `enum`, `properties`,
/// `required`, `additionalProperties` (false closes an object; a schema types a map's values),
/// `items`, `minimum` and `maximum`. A keyword it does not know fails the check rather than
/// passing silently.
struct OpenAPISchemaChecker {
    let document: JSONValue

    private static let knownKeywords: Set<String> = [
        "$ref", "type", "nullable", "enum", "properties", "required", "additionalProperties", "items", "minimum", "maximum",
        "description", "format",
    ]

    init(_ document: JSONValue) {
        self.document = document
    }

    /// Every way `value` breaks `schema`, each as "where: what" (empty when it conforms).
    func problems(_ value: JSONValue, _ schema: JSONValue, at location: String = "$") -> [String] {
        guard case .object(let keywords) = schema else { return ["\(location): the schema is not an object"] }
        if let reference = keywords["$ref"]?.string {
            guard let resolved = resolve(reference) else { return ["\(location): unknown reference \(reference)"] }
            return problems(value, resolved, at: location)
        }
        let unknown = Set(keywords.keys).subtracting(Self.knownKeywords).filter { !$0.hasPrefix("x-") }
        if !unknown.isEmpty { return ["\(location): the checker does not know \(unknown.sorted())"] }
        if value == .null {
            return keywords["nullable"] == .bool(true) ? [] : ["\(location): null where the schema does not allow it"]
        }
        if case .array(let allowed) = keywords["enum"], !allowed.contains(value) {
            return ["\(location): \(value) is not one of \(allowed.map(\.description))"]
        }
        guard let type = keywords["type"]?.string else { return [] }
        switch (type, value) {
        case ("string", .string(let text)):
            if keywords["format"] == .string("uuid"), UUID(uuidString: text) == nil { return ["\(location): \(value) is not a UUID"] }
            return []
        case ("boolean", .bool):
            return []
        case ("integer", .integer(let number)):
            return bounds(Double(number), keywords, at: location)
        case ("number", .integer(let number)):
            return bounds(Double(number), keywords, at: location)
        case ("number", .number(let number)):
            return bounds(number, keywords, at: location)
        case ("array", .array(let elements)):
            guard let items = keywords["items"] else { return [] }
            return elements.enumerated().flatMap { index, element in problems(element, items, at: "\(location)[\(index)]") }
        case ("object", .object(let members)):
            return objectProblems(members, keywords, at: location)
        default:
            return ["\(location): \(value) is not of type \(type)"]
        }
    }

    /// What the document says about an answer of `method template` (a documented template such
    /// as `/api/v1/users/{id}`) with `status` and `contentType`.
    enum DocumentedAnswer: Equatable {
        case undocumentedStatus
        case noBody
        case undocumentedContentType(documented: [String])
        case schema(JSONValue)
    }

    func documented(_ method: HTTPMethod, _ template: String, status: UInt, contentType: String = "application/json") -> DocumentedAnswer {
        guard let response = operation(method, template)?["responses"]?[String(status)] else { return .undocumentedStatus }
        guard case .object(let content) = response["content"] ?? .null else { return .noBody }
        guard let schema = content[contentType]?["schema"] else { return .undocumentedContentType(documented: content.keys.sorted()) }
        return .schema(schema)
    }

    func operation(_ method: HTTPMethod, _ template: String) -> JSONValue? {
        document["paths"]?[template]?[method.rawValue.lowercased()]
    }

    /// Every documented operation as "METHOD /template".
    var operations: [String] {
        guard case .object(let paths) = document["paths"] ?? .null else { return [] }
        return paths.flatMap { path, methods -> [String] in
            guard case .object(let entries) = methods else { return [] }
            return entries.keys.map { "\($0.uppercased()) \(path)" }
        }.sorted()
    }

    /// The documented template a concrete path belongs to: segments equal or a `{parameter}`,
    /// literal segments preferred (`/api/v1/vms/power` over `/api/v1/vms/{id}`).
    func template(_ method: HTTPMethod, for path: String) -> String? {
        let segments = path.split(separator: "?", maxSplits: 1)[0].split(separator: "/")
        let candidates = operations.compactMap { operation -> (String, Int)? in
            let parts = operation.split(separator: " ", maxSplits: 1)
            guard parts[0] == method.rawValue else { return nil }
            let template = parts[1].split(separator: "/")
            guard template.count == segments.count else { return nil }
            var literal = 0
            for (expected, actual) in zip(template, segments) {
                if expected.hasPrefix("{") { continue }
                guard expected == actual else { return nil }
                literal += 1
            }
            return (String(parts[1]), literal)
        }
        return candidates.max { $0.1 < $1.1 }?.0
    }

    /// How the values a concrete path puts in the template's `{parameters}` break their documented schemas.
    func pathParameterProblems(_ method: HTTPMethod, _ template: String, _ path: String) -> [String] {
        guard case .array(let parameters) = operation(method, template)?["parameters"] ?? .null else { return [] }
        let segments = path.split(separator: "?", maxSplits: 1)[0].split(separator: "/")
        return zip(template.split(separator: "/"), segments).flatMap { expected, actual -> [String] in
            guard expected.hasPrefix("{") else { return [] }
            let name = String(expected.dropFirst().dropLast())
            guard let schema = parameters.first(where: { $0["in"] == .string("path") && $0["name"] == .string(name) })?["schema"] else {
                return ["path parameter \(name) is not documented"]
            }
            let value: JSONValue =
                schema["type"] == .string("integer")
                ? Int64(actual).map(JSONValue.integer) ?? .string(String(actual)) : .string(String(actual))
            return problems(value, schema, at: "path parameter \(name)")
        }
    }

    private func resolve(_ reference: String) -> JSONValue? {
        guard reference.hasPrefix("#/") else { return nil }
        var node: JSONValue? = document
        for key in reference.dropFirst(2).split(separator: "/") { node = node?[String(key)] }
        return node
    }

    private func bounds(_ number: Double, _ keywords: [String: JSONValue], at location: String) -> [String] {
        var found: [String] = []
        if let minimum = keywords["minimum"].flatMap(Self.number), number < minimum { found.append("\(location): \(number) < \(minimum)") }
        if let maximum = keywords["maximum"].flatMap(Self.number), number > maximum { found.append("\(location): \(number) > \(maximum)") }
        return found
    }

    private static func number(_ value: JSONValue) -> Double? {
        switch value {
        case .integer(let number): return Double(number)
        case .number(let number): return number
        default: return nil
        }
    }

    private func objectProblems(_ members: [String: JSONValue], _ keywords: [String: JSONValue], at location: String) -> [String] {
        var found: [String] = []
        let properties: [String: JSONValue]
        if case .object(let declared) = keywords["properties"] ?? .null { properties = declared } else { properties = [:] }
        if case .array(let required) = keywords["required"] ?? .null {
            for name in required.compactMap(\.string) where members[name] == nil {
                found.append("\(location): required field \(name) is missing")
            }
        }
        for (name, member) in members.sorted(by: { $0.key < $1.key }) {
            if let schema = properties[name] {
                found += problems(member, schema, at: "\(location).\(name)")
            } else if keywords["additionalProperties"] == .bool(false) {
                found.append("\(location): undocumented field \(name)")
            } else if let schema = keywords["additionalProperties"], schema != .bool(true) {
                found += problems(member, schema, at: "\(location).\(name)")
            }
        }
        return found
    }
}

/// A request body written like JSON in a test (`["name": "web", "cpus": 2, "ids": [id]]`).
enum JSONBody: Encodable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    case string(String)
    case integer(Int)
    case bool(Bool)
    case array([JSONBody])
    case object([String: JSONBody])

    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .integer(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(arrayLiteral elements: JSONBody...) { self = .array(elements) }
    init(dictionaryLiteral elements: (String, JSONBody)...) { self = .object(Dictionary(uniqueKeysWithValues: elements)) }
    init(_ id: UUID) { self = .string(id.uuidString) }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// Calls the API through a test client and checks every answer against the OpenAPI document:
/// the status is one the operation documents, and the body fits that status's schema. Keeps
/// which operations answered with success, so a test can require all of them.
final class APIContract: @unchecked Sendable {
    let checker: OpenAPISchemaChecker
    private(set) var succeeded: Set<String> = []
    private(set) var answers: [String: Set<UInt>] = [:]

    init(_ client: TestClient) async throws {
        let answer = try await client.request(.GET, "/api/v1/openapi.json")
        checker = OpenAPISchemaChecker(try JSONValue.parse(Data(buffer: answer.body)))
    }

    /// - Parameter expect: the status the test means to provoke.
    @discardableResult
    func call(
        _ client: TestClient, _ method: HTTPMethod, _ path: String, _ body: JSONBody? = nil, headers: HTTPHeaders = [:],
        expect: HTTPStatus, file: StaticString = #filePath, line: UInt = #line
    ) async throws -> TestingHTTPResponse {
        let answer = try await client.request(method, path, json: body, headers: headers)
        check(method, path, answer, file: file, line: line)
        XCTAssertEqual(answer.status, expect, "\(method) \(path): \(answer.body.string)", file: file, line: line)
        return answer
    }

    /// Checks an answer got some other way (a signed agent or hook request).
    func check(_ method: HTTPMethod, _ path: String, _ answer: TestingHTTPResponse, file: StaticString = #filePath, line: UInt = #line) {
        guard let template = checker.template(method, for: path) else {
            XCTFail("\(method) \(path) is not in the document", file: file, line: line)
            return
        }
        let operation = "\(method.rawValue) \(template)"
        let status = answer.status.code
        // A path the server took must be one the document allows (refused ones may be deliberately wrong).
        if (200..<300).contains(status) {
            for problem in checker.pathParameterProblems(method, template, path) {
                XCTFail("\(operation): \(problem)", file: file, line: line)
            }
        }
        answers[operation, default: []].insert(status)
        if (200..<300).contains(status) { succeeded.insert(operation) }
        let contentType = answer.headers.contentType.map { "\($0.type)/\($0.subType)" } ?? "application/json"
        let schema: JSONValue
        switch checker.documented(method, template, status: status, contentType: contentType) {
        case .undocumentedStatus:
            return XCTFail(
                "\(operation) answered \(status), which the document does not list: \(answer.body.string)", file: file, line: line)
        case .noBody:
            return XCTAssertEqual(answer.body.readableBytes, 0, "\(operation) \(status) documents no body", file: file, line: line)
        case .undocumentedContentType(let documented):
            return XCTFail("\(operation) \(status) answered \(contentType), the document lists \(documented)", file: file, line: line)
        case .schema(let documented):
            schema = documented
        }
        do {
            let values =
                contentType == "text/event-stream" ? Self.events(answer.body.string) : [try JSONValue.parse(Data(buffer: answer.body))]
            for (index, value) in values.enumerated() {
                for problem in checker.problems(value, schema, at: values.count > 1 ? "$[\(index)]" : "$") {
                    XCTFail("\(operation) \(status): \(problem)", file: file, line: line)
                }
            }
        } catch {
            XCTFail("\(operation) \(status): not JSON (\(error)): \(answer.body.string)", file: file, line: line)
        }
    }

    /// The events of a server-sent event stream, each as an object of its fields (`data` lines joined).
    static func events(_ stream: String) -> [JSONValue] {
        stream.components(separatedBy: "\n\n").compactMap { block in
            var fields: [String: String] = [:]
            for line in block.split(separator: "\n") where !line.hasPrefix(":") {
                let parts = line.split(separator: ":", maxSplits: 1)
                let value = parts.count == 2 ? String(parts[1].drop { $0 == " " }) : ""
                fields[String(parts[0]), default: ""] += fields[String(parts[0])] == nil ? value : "\n" + value
            }
            // A block with no field but the reconnection delay sets it and dispatches no event.
            return fields.isEmpty || fields.keys.sorted() == ["retry"] ? nil : .object(fields.mapValues(JSONValue.string))
        }
    }
}
