import Vapor

/// The audit log pages (SPEC LOG-2..5).
enum LogsController {
    struct EntryRow: Encodable {
        var number: Int
        var kind: String
        var time: String
        var vmName: String
        var vmRole: String
        var operatorName: String
        var operatorIP: String
        var action: String
        var result: String
        var details: String
    }

    struct Option: Encodable {
        var value: String
        var selected: Bool
    }

    struct ListPage: Encodable {
        var chrome: PageChrome
        var entries: [EntryRow]
        var pagination: PaginationView
        var from: String
        var to: String
        var kinds: [Option]
        var roles: [Option]
        var ip: String
        var timeZone: String
        var searchError: String?
        var hiddenSearch: [PaginationView.HiddenField]
        var canDelete: Bool
    }

    struct BackupRow: Encodable {
        var name: String
        var size: Int
        var modified: String
        var url: String
    }

    struct BackupsPage: Encodable {
        var chrome: PageChrome
        var backups: [BackupRow]
        /// Shown to system administrators only: a server path tells others nothing they need.
        var directory: String?
    }

    struct ConfirmDeletePage: Encodable {
        var chrome: PageChrome
        var total: Int
    }

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.logs.pathComponents, use: list).requires(.viewLogs)
        routes.get(SiteURL.logsDelete.pathComponents, use: confirmDelete).requires(.deleteLogs)
        routes.post(SiteURL.logsDelete.pathComponents, use: deleteAll).requires(.deleteLogs)
        routes.post(SiteURL.logsBackup.pathComponents, use: backup).requires(.backupLogs)
        routes.get(SiteURL.logBackups.pathComponents, use: backups).requires(.backupLogs)
        routes.get(SiteURL.logBackup(name: nil).pathComponents, use: download).requires(.backupLogs)
    }

    @Sendable static func list(request: Request) async throws -> Response {
        let config = request.application.flotilla.config
        let display = DisplayTime(timeZone: config.displayTimeZone)
        let query = QueryParameters(request.url.query)
        var search = LogSearch()
        var searchError: String?
        var status = HTTPResponseStatus.ok
        do {
            search = try LogSearch(query: query, timeZone: config.displayTimeZone)
        } catch let error as FlotillaError {
            searchError = error.message
            status = error.status
        }
        let pageRequest = (try? PageRequest(page: query.first("page"), per: query.first("per"))) ?? PageRequest()
        let page =
            searchError == nil
            ? try await AuditLog.search(search, page: pageRequest, on: request.db)
            : Page(items: [], total: 0, request: pageRequest)
        let roles = Set(try await AuditLog.knownRoles(on: request.db) + search.roles).sorted()
        let pageView = ListPage(
            chrome: PageChrome(request, title: "Logs"),
            entries: page.items.map { row($0, display: display) },
            pagination: PaginationView(page, path: SiteURL.logs.relative, query: search.queryItems),
            from: search.from.map(display.inputValue) ?? query.first("from") ?? "",
            to: search.to.map(display.inputValue) ?? query.first("to") ?? "",
            kinds: LogKind.allCases.map { Option(value: $0.rawValue, selected: search.kinds.contains($0)) },
            roles: roles.map { Option(value: $0, selected: search.roles.contains($0)) },
            ip: search.operatorIP ?? query.first("ip") ?? "",
            timeZone: config.displayTimeZone.identifier,
            searchError: searchError,
            hiddenSearch: search.queryItems.map { .init(name: $0.0, value: $0.1) },
            canDelete: Action.deleteLogs.isAllowed(for: request.auth.get(User.self)?.role))
        let response = try await request.view.render("logs", pageView).encodeResponse(for: request)
        response.status = status
        return response
    }

    @Sendable static func confirmDelete(request: Request) async throws -> View {
        let total = try await LogEntry.query(on: request.db).count()
        return try await request.view.render(
            "logs-delete", ConfirmDeletePage(chrome: PageChrome(request, title: "Delete all logs"), total: total))
    }

    @Sendable static func deleteAll(request: Request) async throws -> Response {
        let count = try await AuditLog.deleteAll(by: request.auditActor, on: request.db)
        request.notice("Deleted \(count) log entries.")
        return request.redirect(to: SiteURL.logs.relative)
    }

    @Sendable static func backup(request: Request) async throws -> Response {
        let config = request.application.flotilla.config
        // The form repeats the current search as hidden fields, encoded like a query string.
        let search = try LogSearch(query: QueryParameters(request.body.string), timeZone: config.displayTimeZone)
        let (file, count) = try await request.logBackup.write(search, by: request.auditActor, on: request.db)
        await request.audit(
            .operation, action: "logs.backup", result: .success,
            details: "backed up \(count) entries (\(search.summary)) to \(file.name)")
        request.notice("Wrote \(count) entries to \(file.name).")
        return request.redirect(to: SiteURL.logBackups.relative)
    }

    @Sendable static func backups(request: Request) async throws -> View {
        let backup = request.logBackup
        let rows = try backup.list().map {
            BackupRow(
                name: $0.name, size: $0.size, modified: backup.displayTime.string($0.modified),
                url: SiteURL.logBackup(name: $0.name).relative)
        }
        return try await request.view.render(
            "log-backups",
            BackupsPage(
                chrome: PageChrome(request, title: "Log backups"), backups: rows,
                directory: request.auth.get(User.self)?.isSystemAdministrator == true ? backup.directory : nil))
    }

    @Sendable static func download(request: Request) async throws -> Response {
        let name = try request.parameters.require("name")
        guard let path = request.logBackup.existingPath(of: name) else { throw FlotillaError.notFound("no such backup") }
        let response = try await request.fileio.asyncStreamFile(at: path, mediaType: .plainText)
        response.headers.contentDisposition = .init(.attachment, filename: name)
        return response
    }

    static func row(_ entry: LogEntry, display: DisplayTime) -> EntryRow {
        EntryRow(
            number: entry.id ?? 0, kind: entry.kind, time: display.string(entry.time), vmName: entry.vmName ?? "",
            vmRole: entry.vmRole ?? "", operatorName: entry.operatorName ?? "", operatorIP: entry.operatorIP ?? "",
            action: entry.action, result: entry.result, details: entry.details)
    }
}

extension Request {
    var logBackup: LogBackup {
        LogBackup(config: application.flotilla.config)
    }
}
