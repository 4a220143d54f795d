import Fluent
import SQLKit
import Vapor

/// The VM list across environments (SPEC DASH-2..4, DASH-7): filters read from a URL's query,
/// one page read by the database.
struct VMDirectory {
    let database: any Database

    /// A list's filters, as they appear in the URL (`q`, `role`, `environment`).
    struct Filter: Sendable, Equatable {
        /// Fuzzy: the name contains the query's characters in order ("lw1" finds lab-web-1);
        /// the IP address or role contains it as typed.
        var query: String?
        var role: String?
        var environmentID: UUID?

        /// Characters a name, address or role can hold; others in a query are dropped (`%` and
        /// `_` would be LIKE wildcards otherwise).
        static let queryCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789.-:")

        init(query: String? = nil, role: String? = nil, environmentID: UUID? = nil) {
            self.query = query
            self.role = role
            self.environmentID = environmentID
        }

        /// Reads `q`, `role` and `environment`; a malformed environment ID or an overlong value
        /// is a validation error.
        init(_ parameters: QueryParameters) throws {
            if let text = parameters.first("q") {
                guard text.count <= 100 else { throw FlotillaError.validation("search text has at most 100 characters") }
                let kept = String(text.lowercased().filter { Self.queryCharacters.contains($0) })
                query = kept.isEmpty ? nil : kept
            }
            if let text = parameters.first("role") {
                guard text.count <= 64 else { throw FlotillaError.validation("role has at most 64 characters") }
                role = text
            }
            if let text = parameters.first("environment") {
                guard let id = UUID(uuidString: text) else { throw FlotillaError.validation("environment must be an environment ID") }
                environmentID = id
            }
        }

        /// The filter as query items, for links that keep it.
        var queryItems: [(String, String)] {
            [("q", query), ("role", role), ("environment", environmentID?.uuidString)].compactMap { key, value in
                value.map { (key, $0) }
            }
        }

        /// `%l%w%1%`: the name pattern of a fuzzy query.
        var namePattern: String? {
            query.map { "%" + $0.map(String.init).joined(separator: "%") + "%" }
        }
    }

    /// One row of the list.
    struct Row: Sendable {
        var id: UUID
        var host_name: String
        var ip: String
        var role: String
        var environment_id: UUID
        var environment: String
        var status: String
        var power_state: String?
        var guest_os: String?
        var cpus: Int?
        var memory_mb: Int?
        var disk_gb: Double?
        var notes: String

        /// Read by column (no reflective decoding: this runs for every row of every list page).
        init(row: any SQLRow) throws {
            id = try row.decode(column: "id", as: UUID.self)
            host_name = try row.decode(column: "host_name", as: String.self)
            ip = try row.decode(column: "ip", as: String.self)
            role = try row.decode(column: "role", as: String.self)
            environment_id = try row.decode(column: "environment_id", as: UUID.self)
            environment = try row.decode(column: "environment", as: String.self)
            status = try row.decode(column: "status", as: String.self)
            power_state = try row.decode(column: "power_state", as: String?.self)
            guest_os = try row.decode(column: "guest_os", as: String?.self)
            cpus = try row.decode(column: "cpus", as: Int?.self)
            memory_mb = try row.decode(column: "memory_mb", as: Int?.self)
            disk_gb = try row.decode(column: "disk_gb", as: Double?.self)
            notes = try row.decode(column: "notes", as: String.self)
        }
    }

    /// One page by host name, in one statement: the total rides along as an uncorrelated
    /// subquery that joins the roles only when the filter needs them (every VM has a role and an
    /// environment), and the page walks the host-name index. Only a page past the end costs a
    /// second statement, for the total.
    func list(_ filter: Filter, page: PageRequest) async throws -> Page<Row> {
        guard let sql = database as? any SQLDatabase else { throw FlotillaError(.unavailable, "the VM list needs an SQL database") }
        let conditions = filter.conditions
        let whereClause: SQLQueryString = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let counted: SQLQueryString =
            filter.role != nil || filter.query != nil
            ? "SELECT COUNT(*) FROM vms v JOIN roles r ON r.id = v.role_id\(whereClause)"
            : "SELECT COUNT(*) FROM vms v\(whereClause)"
        let rows = try await sql.raw(
            """
            SELECT v.id, v.host_name, v.ip, r.name AS role, v.environment_id, e.name AS environment, v.status, v.power_state,
                v.guest_os, v.cpus, v.memory_mb, v.disk_gb, v.notes, (\(counted)) AS list_total
            FROM vms v JOIN roles r ON r.id = v.role_id JOIN environments e ON e.id = v.environment_id\(whereClause)
            ORDER BY v.host_name, v.id LIMIT \(bind: page.per) OFFSET \(bind: page.offset)
            """
        ).all()
        guard let first = rows.first else {
            let total = try await sql.raw("SELECT (\(counted)) AS list_total").first()
            return Page(items: [], total: try total?.decode(column: "list_total", as: Int.self) ?? 0, request: page)
        }
        return Page(items: try rows.map(Row.init(row:)), total: try first.decode(column: "list_total", as: Int.self), request: page)
    }
}

extension VMDirectory.Filter {
    /// The filter as SQL conditions on `vms v` joined with `roles r`.
    fileprivate var conditions: [SQLQueryString] {
        var conditions: [SQLQueryString] = []
        if let role { conditions.append("r.name = \(bind: role)") }
        if let environmentID { conditions.append("v.environment_id = \(bind: environmentID)") }
        if let query, let namePattern {
            let contains = "%" + query + "%"
            conditions.append(
                "(LOWER(v.host_name) LIKE \(bind: namePattern) OR v.ip LIKE \(bind: contains) OR LOWER(r.name) LIKE \(bind: contains))")
        }
        return conditions
    }
}

extension Request {
    var vmDirectory: VMDirectory { VMDirectory(database: db) }
}
