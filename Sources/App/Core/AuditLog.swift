import Fluent
import Vapor

/// The audit log (SPEC LOG): writing an entry from any module is one call.
public enum AuditLog {
    /// Who did something and from where; `system` for work the server does on its own.
    public struct Actor: Sendable {
        public var name: String?
        public var ip: String?

        public init(name: String?, ip: String?) {
            self.name = name
            self.ip = ip
        }

        public static let system = Actor(name: "system", ip: nil)
    }

    /// Writes one entry. Failures to write are logged and swallowed so auditing never
    /// turns a successful action into an error.
    public static func record(
        _ kind: LogKind, action: String, result: LogResult, details: String = "",
        vmName: String? = nil, vmRole: String? = nil, by actor: Actor, on database: any Database, logger: Logger
    ) async {
        let entry = LogEntry(
            kind: kind, vmName: vmName, vmRole: vmRole, operatorName: actor.name,
            operatorIP: actor.ip, action: action, result: result, details: details)
        do {
            try await entry.create(on: database)
        } catch {
            logger.error("could not write audit log entry '\(action)': \(String(reflecting: error))")
        }
    }

    /// Runs a search and returns one page, newest first.
    public static func search(_ search: LogSearch, page: PageRequest, on database: any Database) async throws -> Page<LogEntry> {
        let total = try await search.apply(to: LogEntry.query(on: database)).count()
        let items = try await search.apply(to: LogEntry.query(on: database))
            .sort(\.$time, .descending)
            .sort(\.$id, .descending)
            .range(page.offset..<(page.offset + page.per))
            .all()
        return Page(items: items, total: total, request: page)
    }

    /// Deletes every entry and leaves one saying who removed how many (SPEC LOG-4).
    public static func deleteAll(by actor: Actor, on database: any Database) async throws -> Int {
        // The first statement writes: SQLite's WAL refuses a transaction that read first and then
        // writes after another connection wrote (SQLITE_BUSY_SNAPSHOT, a 500 under concurrent use).
        try await database.transaction { transaction in
            let entry = LogEntry(
                kind: .operation, operatorName: actor.name, operatorIP: actor.ip,
                action: "logs.delete", result: .success, details: "")
            try await entry.create(on: transaction)
            let entryID = try entry.requireID()
            let count = try await LogEntry.query(on: transaction).filter(\.$id != entryID).count()
            try await LogEntry.query(on: transaction).filter(\.$id != entryID).delete()
            entry.details = "\(actor.name ?? "unknown") deleted all \(count) log entries"
            try await entry.update(on: transaction)
            return count
        }
    }

    /// The distinct VM roles that appear in the log, for the search form.
    public static func knownRoles(on database: any Database) async throws -> [String] {
        try await LogEntry.query(on: database)
            .unique()
            .filter(\.$vmRole != nil)
            .all(\.$vmRole)
            .compactMap { $0 }
            .sorted()
    }
}

extension Request {
    /// The signed-in user (if any) and their IP as an audit actor.
    public var auditActor: AuditLog.Actor {
        AuditLog.Actor(name: auth.get(User.self)?.username, ip: operatorIP)
    }

    /// Writes an audit entry for this request's user and IP.
    public func audit(
        _ kind: LogKind, action: String, result: LogResult, details: String = "",
        vmName: String? = nil, vmRole: String? = nil, actor: AuditLog.Actor? = nil
    ) async {
        await AuditLog.record(
            kind, action: action, result: result, details: details, vmName: vmName,
            vmRole: vmRole, by: actor ?? auditActor, on: db, logger: logger)
    }
}
