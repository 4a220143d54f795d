import Fluent
import Vapor

/// Environment and VM pages (SPEC VM-1..8). Actions that touch vSphere start a job and
/// send the browser to the job's live page.
enum EnvironmentsController {
    struct VMRow: Encodable {
        var id: String
        var hostName: String
        var ip: String
        var role: String
        var status: String
        var statusReason: String?
        var powerState: String
        var resources: String
        var notes: String
        var powerURL: String
        var deleteURL: String
        var passwordURL: String
        var networkURL: String
        var netmask: String
        var gateway: String
        var dns1: String
        var dns2: String
    }

    struct EnvironmentRow: Encodable {
        var id: String
        var name: String
        var description: String
        var vmCount: Int
        var url: String
        var liveURL: String
        var vms: [VMRow]
    }

    struct ListPage: Encodable {
        var chrome: PageChrome
        var environments: [EnvironmentRow]
        var pagination: PaginationView
        var canAdd: Bool
        var canDelete: Bool
        var canPower: Bool
    }

    struct DetailPage: Encodable {
        var chrome: PageChrome
        var environment: EnvironmentRow
        var roles: [String]
        var canEdit: Bool
        var canAddVM: Bool
        var canDeleteVM: Bool
        var canPower: Bool
        var canChangePassword: Bool
        var canChangeNetwork: Bool
        var error: String?
        var form: [String: String]
    }

    struct NewPage: Encodable {
        var chrome: PageChrome
        var error: String?
        var name: String
        var description: String
    }

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.environments.pathComponents, use: list).requires(.viewEnvironments)
        routes.get(SiteURL.environmentsNew.pathComponents, use: new).requires(.addEnvironment)
        routes.post(SiteURL.environments.pathComponents, use: create).requires(.addEnvironment)
        routes.post(SiteURL.environmentsBatch.pathComponents, use: batchPower).requires(.powerVM)
        routes.post(SiteURL.environmentsBatchDelete.pathComponents, use: batchDelete).requires(.deleteEnvironment)
        routes.get(SiteURL.environment(id: nil).pathComponents, use: show).requires(.viewEnvironments)
        routes.post(SiteURL.environment(id: nil).pathComponents, use: edit).requires(.editEnvironment)
        routes.post(SiteURL.environmentVMs(id: nil).pathComponents, use: addVM).requires(.addVM)
        routes.post(SiteURL.vmPower(id: nil).pathComponents, use: powerVM).requires(.powerVM)
        routes.post(SiteURL.vmDelete(id: nil).pathComponents, use: deleteVM).requires(.deleteVM)
        routes.post(SiteURL.vmPassword(id: nil).pathComponents, use: changePassword).requires(.changeVMPassword)
        routes.post(SiteURL.vmNetwork(id: nil).pathComponents, use: changeNetwork).requires(.changeVMNetwork)
    }

    static func row(_ environment: Environment, vms: [VM], count: Int? = nil) throws -> EnvironmentRow {
        let id = try environment.requireID()
        return EnvironmentRow(
            id: id.uuidString, name: environment.name, description: environment.description, vmCount: count ?? vms.count,
            url: SiteURL.environment(id: id).relative, liveURL: "/api/v1/environments/\(id.uuidString)/live",
            vms: try vms.map { vm in
                let vmID = try vm.requireID()
                let resources = [
                    vm.cpus.map { "\($0) CPU" }, vm.memoryMB.map { "\($0) MB" }, vm.diskGB.map { String(format: "%.0f GB", $0) },
                ]
                .compactMap { $0 }.joined(separator: " · ")
                return VMRow(
                    id: vmID.uuidString, hostName: vm.hostName, ip: vm.ip, role: vm.$role.value?.name ?? "",
                    status: vm.status.rawValue, statusReason: vm.statusReason, powerState: vm.powerState ?? "unknown",
                    resources: resources, notes: vm.notes, powerURL: SiteURL.vmPower(id: vmID).relative,
                    deleteURL: SiteURL.vmDelete(id: vmID).relative, passwordURL: SiteURL.vmPassword(id: vmID).relative,
                    networkURL: SiteURL.vmNetwork(id: vmID).relative, netmask: String(vm.prefixLength), gateway: vm.gateway,
                    dns1: vm.dns1 ?? "", dns2: vm.dns2 ?? "")
            })
    }

    @Sendable static func list(request: Request) async throws -> View {
        let query = QueryParameters(request.url.query)
        let page = try await request.environments.list(page: try PageRequest(page: query.first("page"), per: query.first("per")))
        // The expanders load their VMs when opened, so a long page stays quick.
        let rows = try page.items.map { item in
            let environment = Environment(name: item.name, description: item.description)
            environment.id = item.id
            return try row(environment, vms: [], count: item.vmCount)
        }
        let role = request.auth.get(User.self)?.role
        return try await request.view.render(
            "environments",
            ListPage(
                chrome: PageChrome(request, title: "Environments"), environments: rows,
                pagination: PaginationView(page, path: SiteURL.environments.relative, query: []),
                canAdd: Action.addEnvironment.isAllowed(for: role), canDelete: Action.deleteEnvironment.isAllowed(for: role),
                canPower: Action.powerVM.isAllowed(for: role)))
    }

    @Sendable static func new(request: Request) async throws -> View {
        try await request.view.render(
            "environment-new",
            NewPage(
                chrome: PageChrome(request, title: "Add environment"),
                error: nil, name: "", description: ""))
    }

    struct EnvironmentForm: Content {
        var name: String?
        var description: String?
    }

    @Sendable static func create(request: Request) async throws -> Response {
        let form = try request.content.decode(EnvironmentForm.self)
        do {
            let environment = try await request.environments.add(name: form.name ?? "", description: form.description ?? "")
            return request.redirect(to: SiteURL.environment(id: try environment.requireID()).relative)
        } catch let error as FlotillaError {
            let page = NewPage(
                chrome: PageChrome(request, title: "Add environment"), error: error.message,
                name: String((form.name ?? "").prefix(64)), description: String((form.description ?? "").prefix(2000)))
            let response = try await request.view.render("environment-new", page).encodeResponse(for: request)
            response.status = error.status
            return response
        }
    }

    /// The checked environments of the list's batch form.
    private static func selection(_ query: QueryParameters) throws -> [UUID] {
        let ids = query.all("id").compactMap(UUID.init(uuidString:))
        guard !ids.isEmpty else { throw FlotillaError.validation("select at least one environment") }
        return ids
    }

    /// The list's batch form: power on / off / restart the checked environments.
    @Sendable static func batchPower(request: Request) async throws -> Response {
        let query = QueryParameters(request.body.string)
        let action = try PowerAction(parsing: query.first("action") ?? "")
        let jobID = try await request.environments.power(try selection(query), action: action)
        return request.redirect(to: SiteURL.job(id: jobID).relative)
    }

    /// The batch form's Delete button: a route of its own, so the permission guard decides.
    @Sendable static func batchDelete(request: Request) async throws -> Response {
        let jobID = try await request.environments.delete(try selection(QueryParameters(request.body.string)))
        return request.redirect(to: SiteURL.job(id: jobID).relative)
    }

    @Sendable static func show(request: Request) async throws -> Response {
        try await render(request, error: nil, form: [:], status: .ok)
    }

    private static func render(
        _ request: Request, error: String?, form: [String: String], status: HTTPResponseStatus
    ) async throws -> Response {
        let id = try request.uuidParameter("environment")
        let environment = try await request.environments.find(id)
        let vms = try await environment.$vms.query(on: request.db).with(\.$role).sort(\.$hostName).all()
        let roles = try await Role.query(on: request.db).sort(\.$name).all().map(\.name)
        let role = request.auth.get(User.self)?.role
        let page = DetailPage(
            chrome: PageChrome(request, title: environment.name), environment: try row(environment, vms: vms), roles: roles,
            canEdit: Action.editEnvironment.isAllowed(for: role), canAddVM: Action.addVM.isAllowed(for: role),
            canDeleteVM: Action.deleteVM.isAllowed(for: role), canPower: Action.powerVM.isAllowed(for: role),
            canChangePassword: Action.changeVMPassword.isAllowed(for: role), canChangeNetwork: Action.changeVMNetwork.isAllowed(for: role),
            error: error, form: form)
        let response = try await request.view.render("environment", page).encodeResponse(for: request)
        response.status = status
        return response
    }

    @Sendable static func edit(request: Request) async throws -> Response {
        let id = try request.uuidParameter("environment")
        let form = try request.content.decode(EnvironmentForm.self)
        _ = try await request.environments.edit(id, description: form.description ?? "")
        request.notice("Description saved.")
        return request.redirect(to: SiteURL.environment(id: id).relative)
    }

    @Sendable static func addVM(request: Request) async throws -> Response {
        let id = try request.uuidParameter("environment")
        let query = QueryParameters(request.body.string)
        let input = VMs.Input(
            hostName: query.first("hostName") ?? "", ip: query.first("ip") ?? "", netmask: query.first("netmask") ?? "",
            gateway: query.first("gateway") ?? "", dns1: query.first("dns1"), dns2: query.first("dns2"), role: query.first("role") ?? "",
            password: query.first("password") ?? "", passwordConfirmation: query.first("passwordConfirmation") ?? "",
            notes: query.first("notes"))
        do {
            let (_, jobID) = try await request.vms.add(input, to: id)
            return request.redirect(to: SiteURL.job(id: jobID).relative)
        } catch let error as FlotillaError {
            let kept = ["hostName", "ip", "netmask", "gateway", "dns1", "dns2", "role", "notes"]
            let form = Dictionary(uniqueKeysWithValues: kept.map { ($0, String((query.first($0) ?? "").prefix(256))) })
            return try await render(request, error: error.message, form: form, status: error.status)
        }
    }

    @Sendable static func powerVM(request: Request) async throws -> Response {
        let id = try request.uuidParameter("VM")
        let action = try PowerAction(parsing: QueryParameters(request.body.string).first("action") ?? "")
        return request.redirect(to: SiteURL.job(id: try await request.vms.power(id, action: action)).relative)
    }

    @Sendable static func deleteVM(request: Request) async throws -> Response {
        let id = try request.uuidParameter("VM")
        return request.redirect(to: SiteURL.job(id: try await request.vms.delete(id)).relative)
    }

    @Sendable static func changePassword(request: Request) async throws -> Response {
        let id = try request.uuidParameter("VM")
        let query = QueryParameters(request.body.string)
        let input = VMs.PasswordInput(
            password: query.first("password") ?? "", passwordConfirmation: query.first("passwordConfirmation") ?? "")
        return request.redirect(to: SiteURL.job(id: try await request.vms.changePassword(id, input)).relative)
    }

    @Sendable static func changeNetwork(request: Request) async throws -> Response {
        let id = try request.uuidParameter("VM")
        let query = QueryParameters(request.body.string)
        let input = VMs.NetworkInput(
            ip: query.first("ip") ?? "", netmask: query.first("netmask") ?? "",
            gateway: query.first("gateway") ?? "", dns1: query.first("dns1"), dns2: query.first("dns2"))
        return request.redirect(to: SiteURL.job(id: try await request.vms.changeNetwork(id, input)).relative)
    }
}
