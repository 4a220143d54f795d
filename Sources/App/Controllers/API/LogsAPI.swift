import Vapor

/// `/api/v1/logs` (SPEC LOG-2..5).
enum LogsAPI {
    static func register(_ api: any RoutesBuilder) {
        let logs = api.grouped("logs")
        logs.get(use: search).requires(.viewLogs)
        logs.delete(use: deleteAll).requires(.deleteLogs)
        logs.post("backup", use: backup).requires(.backupLogs)
    }

    @Sendable static func search(request: Request) async throws -> ListResponse<API.LogEntryBody> {
        let query = QueryParameters(request.url.query)
        let search = try LogSearch(query: query, timeZone: request.application.flotilla.config.displayTimeZone)
        let page = try await AuditLog.search(
            search, page: try PageRequest(page: query.first("page"), per: query.first("per")), on: request.db)
        return ListResponse(page.map(API.LogEntryBody.init))
    }

    @Sendable static func deleteAll(request: Request) async throws -> API.DeletedLogs {
        API.DeletedLogs(deleted: try await AuditLog.deleteAll(by: request.auditActor, on: request.db))
    }

    /// Backs up every entry, or the search given in the query string.
    @Sendable static func backup(request: Request) async throws -> Response {
        let search = try LogSearch(query: QueryParameters(request.url.query), timeZone: request.application.flotilla.config.displayTimeZone)
        let (file, count) = try await request.logBackup.write(search, by: request.auditActor, on: request.db)
        await request.audit(
            .operation, action: "logs.backup", result: .success,
            details: "backed up \(count) entries (\(search.summary)) to \(file.name)")
        return try await API.BackupBody(name: file.name, entries: count, size: file.size).encodeResponse(status: .created, for: request)
    }
}
