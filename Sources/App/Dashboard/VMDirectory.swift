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
    struct Row: Decodable, Sendable {
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
    }

    func list(_ filter: Filter, page: PageRequest) async throws -> Page<Row> {
        guard let sql = database as? any SQLDatabase else { throw FlotillaError(.unavailable, "the VM list needs an SQL database") }
        let total =
            try await sql.select().column(SQLFunction("COUNT", args: SQLLiteral.all), as: "n")
            .from(VM.schema).joins().filtered(filter).first(decoding: Count.self)?.n ?? 0
        let rows = try await sql.select()
            .column(SQLColumn("id", table: VM.schema)).column("host_name").column("ip")
            .column(SQLColumn("name", table: Role.schema), as: "role")
            .column(SQLColumn("environment_id", table: VM.schema))
            .column(SQLColumn("name", table: Environment.schema), as: "environment")
            .column(SQLColumn("status", table: VM.schema)).column("power_state").column("guest_os")
            .column(SQLColumn("cpus", table: VM.schema)).column(SQLColumn("memory_mb", table: VM.schema)).column("disk_gb")
            .column("notes")
            .from(VM.schema).joins().filtered(filter)
            .orderBy(SQLColumn("host_name", table: VM.schema)).orderBy(SQLColumn("id", table: VM.schema))
            .limit(page.per).offset(page.offset)
            .all(decoding: Row.self)
        return Page(items: rows, total: total, request: page)
    }

    private struct Count: Decodable {
        var n: Int
    }
}

extension SQLSelectBuilder {
    fileprivate func joins() -> Self {
        join(Role.schema, on: SQLColumn("role_id", table: VM.schema), .equal, SQLColumn("id", table: Role.schema))
            .join(Environment.schema, on: SQLColumn("environment_id", table: VM.schema), .equal, SQLColumn("id", table: Environment.schema))
    }

    fileprivate func filtered(_ filter: VMDirectory.Filter) -> Self {
        var builder = self
        if let role = filter.role {
            builder = builder.where(SQLColumn("name", table: Role.schema), .equal, SQLBind(role))
        }
        if let environmentID = filter.environmentID {
            builder = builder.where(SQLColumn("environment_id", table: VM.schema), .equal, SQLBind(environmentID))
        }
        if let query = filter.query, let namePattern = filter.namePattern {
            let contains = "%" + query + "%"
            builder = builder.where { group in
                group.where(SQLFunction("LOWER", args: SQLColumn("host_name", table: VM.schema)), .like, SQLBind(namePattern))
                    .orWhere(SQLColumn("ip", table: VM.schema), .like, SQLBind(contains))
                    .orWhere(SQLFunction("LOWER", args: SQLColumn("name", table: Role.schema)), .like, SQLBind(contains))
            }
        }
        return builder
    }
}

extension Request {
    var vmDirectory: VMDirectory { VMDirectory(database: db) }
}
