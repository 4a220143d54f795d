import Fluent
import Foundation

/// An audit log search (SPEC LOG-3): every filled field narrows the result (intersection).
public struct LogSearch: Sendable, Equatable {
    public var from: Date?
    public var to: Date?
    public var kinds: [LogKind] = []
    public var roles: [String] = []
    public var operatorIP: String?

    public init(from: Date? = nil, to: Date? = nil, kinds: [LogKind] = [], roles: [String] = [], operatorIP: String? = nil) {
        self.from = from
        self.to = to
        self.kinds = kinds
        self.roles = roles
        self.operatorIP = operatorIP
    }

    /// Parses the search from query parameters (`from`, `to`, `kind`…, `role`…, `ip`).
    ///
    /// Times are ISO 8601 with an offset, or `YYYY-MM-DDTHH:MM[:SS]` read in the display zone
    /// (what a browser's date-time picker sends).
    public init(query: QueryParameters, timeZone: TimeZone) throws {
        from = try query.first("from").map { try Self.parseTime($0, field: "from", timeZone: timeZone) }
        to = try query.first("to").map { try Self.parseTime($0, field: "to", timeZone: timeZone) }
        if let from, let to, from > to {
            throw FlotillaError.validation("'from' must not be after 'to'")
        }
        kinds = try query.all("kind").map { value in
            guard let kind = LogKind(rawValue: value) else {
                throw FlotillaError.validation("kind must be one of \(LogKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return kind
        }
        roles = try query.all("role").map { value in
            guard value.count <= 64 else { throw FlotillaError.validation("a role name has at most 64 characters") }
            return value
        }
        if let ip = query.first("ip") {
            guard let address = IPAddress(ip) else {
                throw FlotillaError.validation("ip must be an IPv4 or IPv6 address")
            }
            operatorIP = address.description
        }
    }

    public var isEmpty: Bool { from == nil && to == nil && kinds.isEmpty && roles.isEmpty && operatorIP == nil }

    func apply(to query: QueryBuilder<LogEntry>) -> QueryBuilder<LogEntry> {
        if let from { query.filter(\.$time >= from) }
        if let to { query.filter(\.$time <= to) }
        if !kinds.isEmpty { query.filter(\.$kind ~~ kinds.map(\.rawValue)) }
        if !roles.isEmpty { query.filter(\.$vmRole ~~ roles) }
        if let operatorIP { query.filter(\.$operatorIP == operatorIP) }
        return query
    }

    /// The search as query parameters, so it can be bookmarked and paged.
    public var queryItems: [(String, String)] {
        var items: [(String, String)] = []
        if let from { items.append(("from", DisplayTime.iso(from))) }
        if let to { items.append(("to", DisplayTime.iso(to))) }
        items += kinds.map { ("kind", $0.rawValue) }
        items += roles.map { ("role", $0) }
        if let operatorIP { items.append(("ip", operatorIP)) }
        return items
    }

    /// A one-line human description, used in backups and audit details.
    public var summary: String {
        if isEmpty { return "all entries" }
        return queryItems.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
    }

    static func parseTime(_ text: String, field: String, timeZone: TimeZone) throws -> Date {
        if let date = DisplayTime.parseISO(text) {
            return date
        }
        for format in ["yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd HH:mm", "yyyy-MM-dd"] {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.calendar = Calendar(identifier: .gregorian)
            formatter.timeZone = timeZone
            formatter.dateFormat = format
            formatter.isLenient = false
            if let date = formatter.date(from: text), formatter.string(from: date) == text {
                return date
            }
        }
        throw FlotillaError.validation("'\(field)' is not a date and time (use YYYY-MM-DDTHH:MM or ISO 8601)")
    }
}
