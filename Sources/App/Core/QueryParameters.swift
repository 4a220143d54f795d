import Foundation

/// Raw query parameters or a form body, keeping repeated keys (`kind=a&kind=b`) in order: how
/// pages, the API and commands read `page`, `per`, filters and form fields.
public struct QueryParameters: Sendable {
    private var pairs: [(String, String)]

    public init(_ rawQuery: String?) {
        pairs = (rawQuery ?? "").split(separator: "&").compactMap { part in
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
            }
            guard let key = pieces.first else { return nil }
            return (decode(key), pieces.count > 1 ? decode(pieces[1]) : "")
        }
    }

    /// The non-empty values of a key.
    public func all(_ key: String) -> [String] {
        pairs.filter { $0.0 == key || $0.0 == key + "[]" }.map(\.1).filter { !$0.isEmpty }
    }

    public func first(_ key: String) -> String? { all(key).first }
}
