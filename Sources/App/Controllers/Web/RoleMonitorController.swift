import Fluent
import Vapor

/// Settings → Roles → Monitor (SPEC MON-2): a role's watched services, each added, replaced
/// (same name) or removed from one form. Every change is validated whole, audited and pushed
/// to the role's installed agents as a job (`AgentRollout.configure`). Seen by whoever sees
/// Settings; changed by those who may change it.
enum RoleMonitorController {
    struct ServiceRow: Encodable {
        var name: String
        var foundBy: String
        var start: String
        var stop: String
        var probe: String
        var attempts: Int
        var graceSeconds: Int
        var owners: String
    }

    struct Page: Encodable {
        var chrome: PageChrome
        var role: String
        var services: [ServiceRow]
        var actionURL: String
        var deleteURL: String
        var settingsURL: String
        var error: String?
        var form: [String: String]
    }

    /// The form's fields, kept to show the form again after a refusal.
    static let fields = [
        "name", "findBy", "find", "start", "stop", "probeKind", "probe", "probeStatus", "probeTimeout", "attempts", "graceSeconds",
        "owners",
    ]

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.settingsRoleMonitor(id: nil).pathComponents, use: show).requires(.viewSettings)
        routes.post(SiteURL.settingsRoleMonitor(id: nil).pathComponents, use: save).requires(.changeSettings)
        routes.post(SiteURL.settingsRoleMonitorDelete(id: nil).pathComponents, use: remove).requires(.changeSettings)
    }

    @Sendable static func show(request: Request) async throws -> Response {
        try await render(request, role: try await role(request))
    }

    private static func role(_ request: Request) async throws -> Role {
        guard let role = try await Role.find(try request.uuidParameter("role"), on: request.db) else {
            throw FlotillaError.notFound("no such role")
        }
        return role
    }

    private static func render(
        _ request: Request, role: Role, error: String? = nil, form: [String: String] = [:], status: HTTPResponseStatus = .ok
    ) async throws -> Response {
        let roleID = try role.requireID()
        let services = try await RoleMonitors(database: request.db).services(of: roleID)
        let owners = Set(services.flatMap(\.owners))
        let names = Dictionary(
            uniqueKeysWithValues: try await User.query(on: request.db).filter(\.$id ~~ Array(owners)).all().map {
                (try $0.requireID(), $0.username)
            })
        let rows = services.map { service in
            ServiceRow(
                name: service.name, foundBy: foundBy(service), start: service.start ?? "", stop: service.stop ?? "",
                probe: probe(service.probe), attempts: service.attempts, graceSeconds: service.graceSeconds,
                owners: service.owners.compactMap { names[$0] }.sorted().joined(separator: ", "))
        }
        let page = Page(
            chrome: PageChrome(request, title: "Monitor of role \(role.name)"), role: role.name, services: rows,
            actionURL: SiteURL.settingsRoleMonitor(id: roleID).relative, deleteURL: SiteURL.settingsRoleMonitorDelete(id: roleID).relative,
            settingsURL: SiteURL.settings.relative, error: error, form: form)
        let response = try await request.view.render("role-monitor", page).encodeResponse(for: request)
        response.status = status
        return response
    }

    private static func foundBy(_ service: MonitoredService) -> String {
        if let unit = service.unit { return "systemd unit \(unit)" }
        if let pidfile = service.pidfile { return "pidfile \(pidfile)" }
        return "process \(service.process ?? "")"
    }

    private static func probe(_ probe: MonitoredService.Probe?) -> String {
        guard let probe else { return "none" }
        var text =
            if let tcp = probe.tcp { "TCP \(tcp)" } else if let http = probe.http { "HTTP \(http) → \(probe.status ?? 200)" } else {
                "command \(probe.command ?? "")"
            }
        if let timeout = probe.timeoutSeconds { text += " (timeout \(timeout) s)" }
        return text
    }

    /// Adds the service, or replaces the one of the same name.
    @Sendable static func save(request: Request) async throws -> Response {
        let role = try await role(request)
        let query = QueryParameters(request.body.string)
        let form = Dictionary(uniqueKeysWithValues: fields.map { ($0, String((query.first($0) ?? "").prefix(1000))) })
        do {
            let service = try await parse(query, database: request.db)
            var services = try await RoleMonitors(database: request.db).services(of: try role.requireID())
            if let index = services.firstIndex(where: { $0.name == service.name }) {
                services[index] = service
            } else {
                services.append(service)
            }
            try await change(role, to: services, request: request, what: "watches \(service.name)")
            return request.redirect(to: SiteURL.settingsRoleMonitor(id: try role.requireID()).relative)
        } catch let error as FlotillaError {
            return try await render(request, role: role, error: error.message, form: form, status: error.status)
        }
    }

    @Sendable static func remove(request: Request) async throws -> Response {
        let role = try await role(request)
        let name = QueryParameters(request.body.string).first("name") ?? ""
        var services = try await RoleMonitors(database: request.db).services(of: try role.requireID())
        guard services.contains(where: { $0.name == name }) else {
            return try await render(request, role: role, error: "role \(role.name) watches no service of that name", status: .notFound)
        }
        services.removeAll { $0.name == name }
        try await change(role, to: services, request: request, what: "no longer watches \(name)")
        return request.redirect(to: SiteURL.settingsRoleMonitor(id: try role.requireID()).relative)
    }

    private static func change(_ role: Role, to services: [MonitoredService], request: Request, what: String) async throws {
        let monitors = RoleMonitors(database: request.db)
        try await monitors.validate(services)
        try await monitors.save(services, for: try role.requireID())
        await AuditLog.record(
            .operation, action: "settings.role.monitor", result: .success, details: "role \(role.name) \(what)", vmRole: role.name,
            by: request.auditActor, on: request.db, logger: request.logger)
        let job = try await request.agentRollout.configure(role: role)
        request.notice("Role \(role.name) \(what)." + (job == nil ? "" : " Its VMs' agents get the change in a job."))
    }

    /// The form as a `MonitoredService`; `RoleMonitors.validate` checks the values.
    static func parse(_ query: QueryParameters, database: any Database) async throws -> MonitoredService {
        func text(_ field: String) -> String? {
            guard let value = query.first(field)?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
            return value
        }
        func number(_ field: String, default value: Int) throws -> Int {
            guard let given = text(field) else { return value }
            guard let number = Int(given) else { throw FlotillaError.validation("\(field) is a whole number") }
            return number
        }
        let find = text("find")
        var service = MonitoredService(
            name: text("name") ?? "", start: text("start"), stop: text("stop"), attempts: try number("attempts", default: 5),
            graceSeconds: try number("graceSeconds", default: 10), owners: [])
        switch text("findBy") ?? "process" {
        case "process": service.process = find
        case "pidfile": service.pidfile = find
        case "unit": service.unit = find
        default: throw FlotillaError.validation("a service is found by process name, pidfile or systemd unit")
        }
        let value = text("probe")
        var probe = MonitoredService.Probe()
        switch text("probeKind") ?? "none" {
        case "none": break
        case "tcp": probe.tcp = value ?? ""
        case "http":
            probe.http = value ?? ""
            probe.status = try text("probeStatus").map { _ in try number("probeStatus", default: 200) }
        case "command": probe.command = value ?? ""
        default: throw FlotillaError.validation("a probe is none, tcp, http or command")
        }
        if text("probeKind") ?? "none" != "none" {
            if let timeout = text("probeTimeout") {
                guard let seconds = Double(timeout) else { throw FlotillaError.validation("the probe timeout is a number of seconds") }
                probe.timeoutSeconds = seconds
            }
            service.probe = probe
        }
        let ownerNames = (text("owners") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if !ownerNames.isEmpty {
            let users = try await User.query(on: database).filter(\.$username ~~ ownerNames).all()
            let found = Set(users.map(\.username))
            if let unknown = ownerNames.first(where: { !found.contains($0) }) {
                throw FlotillaError.validation("no user named '\(unknown.prefix(64))'")
            }
            service.owners = try users.map { try $0.requireID() }
        }
        return service
    }
}
