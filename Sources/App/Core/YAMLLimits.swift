// libyaml as Yams bundles and builds it: its event API reads a document with fixed memory,
// which Yams' own composer and decoder do not.
import CYaml

/// Bounds the work a YAML document from a user can cause, checked before Yams sees it.
///
/// Yams' composer recurses once per nesting level (about 30,000 `[` overflow the stack) and its
/// decoder expands aliases and merge keys in full (ten levels of `<<: [*a, *a, …]` under 1 KB
/// make about 10¹⁰ pairs). Documents Flotilla reads (blueprints) need none of that, so anchors,
/// aliases and merge keys are refused, and depth and size are bounded.
enum YAMLLimits {
    static let maximumDepth = 16
    static let maximumValues = 10_000

    /// Throws a validation error naming the first problem; `what` names the document ("the blueprint").
    static func check(_ text: String, what: String) throws {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { throw FlotillaError.validation("\(what) could not be read") }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(text.utf8)
        try bytes.withUnsafeBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            /// For each open collection: whether it is a mapping, and how many values it holds so far
            /// (in a mapping, an even count means the next value is a key).
            var open: [(isMapping: Bool, count: Int)] = []
            var values = 0
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    let problem = parser.problem.map { String(cString: $0) } ?? "unreadable"
                    throw FlotillaError.validation("\(what) is not valid YAML: \(problem) (line \(parser.problem_mark.line + 1))")
                }
                defer { yaml_event_delete(&event) }
                let line = event.start_mark.line + 1
                let anchor: UnsafeMutablePointer<yaml_char_t>?
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return
                case YAML_ALIAS_EVENT:
                    throw FlotillaError.validation("\(what) uses a YAML alias (*) on line \(line); anchors and aliases are not accepted")
                case YAML_SCALAR_EVENT:
                    anchor = event.data.scalar.anchor
                    let isKey = open.last.map { $0.isMapping && $0.count % 2 == 0 } ?? false
                    let isPlain = event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE
                    let value = UnsafeBufferPointer(start: event.data.scalar.value, count: event.data.scalar.length)
                    if isKey, isPlain, value.elementsEqual("<<".utf8) {
                        throw FlotillaError.validation("\(what) uses a YAML merge key (<<) on line \(line); merge keys are not accepted")
                    }
                case YAML_SEQUENCE_START_EVENT:
                    anchor = event.data.sequence_start.anchor
                case YAML_MAPPING_START_EVENT:
                    anchor = event.data.mapping_start.anchor
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    open.removeLast()
                    continue
                default:
                    continue
                }
                if anchor != nil {
                    throw FlotillaError.validation("\(what) sets a YAML anchor (&) on line \(line); anchors and aliases are not accepted")
                }
                values += 1
                guard values <= maximumValues else {
                    throw FlotillaError.validation("\(what) holds more than \(maximumValues) values")
                }
                if !open.isEmpty { open[open.count - 1].count += 1 }
                if event.type != YAML_SCALAR_EVENT {
                    open.append((isMapping: event.type == YAML_MAPPING_START_EVENT, count: 0))
                    guard open.count <= maximumDepth else {
                        throw FlotillaError.validation("\(what) nests deeper than \(maximumDepth) levels (line \(line))")
                    }
                }
            }
        }
    }
}

extension DecodingError {
    /// The field a YAML document (blueprint, service profile) got wrong, in words for its author.
    var fieldExplanation: String {
        switch self {
        case .keyNotFound(let key, let context):
            return (context.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: ".") + " is required"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path) has the wrong type or value"
        @unknown default:
            return "unreadable"
        }
    }
}
