import Fluent
import Vapor

/// Settings (system administrators): vSphere connections and VM roles. The page is rendered from
/// the database alone; each connection's templates are fetched from vSphere after it is shown.
enum SettingsController {
    struct ConnectionRow: Encodable {
        var id: String
        var name: String
        var url: String
        var username: String
        var pinned: Bool
        /// Where the page's script reads the templates from vSphere, after the page is shown.
        var templatesURL: String
        var deleteURL: String
    }

    struct RoleRow: Encodable {
        var name: String
        var connection: String
        var template: String
        var sshUser: String
        var services: String
        /// The role's watched services (Settings → Roles → Monitor).
        var monitorURL: String
    }

    struct Page: Encodable {
        var chrome: PageChrome
        var connections: [ConnectionRow]
        var roles: [RoleRow]
        var report: Connections.Report?
        var error: String?
        var form: [String: String]
        /// Whether notifications are being delivered (a failing mail server shows here).
        var notifications: Notifications.Health
        var notificationsURL: String
    }

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.settings.pathComponents, use: show).requires(.viewSettings)
        routes.post(SiteURL.settingsConnections.pathComponents, use: addConnection).requires(.changeSettings)
        routes.post(SiteURL.settingsConnectionTest.pathComponents, use: testConnection).requires(.changeSettings)
        routes.post(SiteURL.settingsConnectionDelete(id: nil).pathComponents, use: deleteConnection).requires(.changeSettings)
        routes.post(SiteURL.settingsRoles.pathComponents, use: addRole).requires(.changeSettings)
    }

    @Sendable static func show(request: Request) async throws -> Response {
        try await render(request)
    }

    private static func render(
        _ request: Request, report: Connections.Report? = nil, error: String? = nil,
        form: [String: String] = [:], status: HTTPResponseStatus = .ok
    ) async throws -> Response {
        let connections = try await VSphereConnection.query(on: request.db).sort(\.$name).all()
        let rows = try connections.map { connection in
            let id = try connection.requireID()
            return ConnectionRow(
                id: id.uuidString, name: connection.name, url: connection.url, username: connection.username,
                pinned: connection.thumbprint != nil, templatesURL: "/api/v1/connections/\(id.uuidString)/templates",
                deleteURL: SiteURL.settingsConnectionDelete(id: id).relative)
        }
        let names = Dictionary(uniqueKeysWithValues: try connections.map { (try $0.requireID(), $0.name) })
        let roles = try await Role.query(on: request.db).sort(\.$name).all().map {
            RoleRow(
                name: $0.name, connection: names[$0.$connection.id] ?? "", template: $0.template, sshUser: $0.sshUser,
                services: $0.services.replacingOccurrences(of: ",", with: ", "),
                monitorURL: SiteURL.settingsRoleMonitor(id: try $0.requireID()).relative)
        }
        let page = Page(
            chrome: PageChrome(request, title: "Settings"), connections: rows, roles: roles, report: report,
            error: error, form: form, notifications: try await request.notifications.health(),
            notificationsURL: SiteURL.notifications.relative)
        let response = try await request.view.render("settings", page).encodeResponse(for: request)
        response.status = status
        return response
    }

    private static func connectionInput(_ query: QueryParameters) -> Connections.Input {
        Connections.Input(
            name: query.first("name") ?? "", url: query.first("url") ?? "", username: query.first("username") ?? "",
            password: query.first("password") ?? "", thumbprint: query.first("thumbprint"), datacenter: query.first("datacenter"),
            vmFolder: query.first("vmFolder"), resourcePool: query.first("resourcePool"), datastore: query.first("datastore"),
            network: query.first("network"))
    }

    /// The form as typed, minus the password, to show it again.
    private static func kept(_ query: QueryParameters) -> [String: String] {
        let fields = [
            "name", "url", "username", "thumbprint", "datacenter", "vmFolder", "resourcePool", "datastore", "network",
            "roleName", "connectionID", "template", "sshUser", "services",
        ]
        return Dictionary(uniqueKeysWithValues: fields.map { ($0, String((query.first($0) ?? "").prefix(256))) })
    }

    @Sendable static func testConnection(request: Request) async throws -> Response {
        let query = QueryParameters(request.body.string)
        do {
            let report = try await request.connections.test(connectionInput(query))
            return try await render(request, report: report, form: kept(query))
        } catch let error as FlotillaError {
            return try await render(request, error: error.message, form: kept(query), status: error.status)
        }
    }

    @Sendable static func addConnection(request: Request) async throws -> Response {
        let query = QueryParameters(request.body.string)
        do {
            let connection = try await request.connections.add(connectionInput(query))
            request.notice("Connection '\(connection.name)' was added.")
            return request.redirect(to: SiteURL.settings.relative)
        } catch let error as FlotillaError {
            return try await render(request, error: error.message, form: kept(query), status: error.status)
        }
    }

    @Sendable static func deleteConnection(request: Request) async throws -> Response {
        let id = try request.uuidParameter("connection")
        do {
            try await request.connections.delete(id)
        } catch let error as FlotillaError {
            return try await render(request, error: error.message, status: error.status)
        }
        request.notice("Connection deleted.")
        return request.redirect(to: SiteURL.settings.relative)
    }

    @Sendable static func addRole(request: Request) async throws -> Response {
        let query = QueryParameters(request.body.string)
        do {
            guard let connectionID = query.first("connectionID").flatMap(UUID.init(uuidString:)) else {
                throw FlotillaError.validation("choose a vSphere connection")
            }
            let input = Roles.Input(
                name: query.first("roleName") ?? "", connectionID: connectionID, template: query.first("template") ?? "",
                cpus: query.first("cpus").flatMap(Int.init), memoryMB: query.first("memoryMB").flatMap(Int.init),
                sshUser: query.first("sshUser"), services: query.first("services"))
            let role = try await request.roles.save(input)
            request.notice("Role '\(role.name)' was saved.")
            return request.redirect(to: SiteURL.settings.relative)
        } catch let error as FlotillaError {
            return try await render(request, error: error.message, form: kept(query), status: error.status)
        }
    }
}
