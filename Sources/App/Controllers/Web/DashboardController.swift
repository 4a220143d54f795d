import Fluent
import Vapor

/// The home page (SPEC DASH-1..4, DASH-7, VM-12, VM-14): role cards and the VM list, both live;
/// the event stream behind them; batch power; notes; the global search.
enum DashboardController {
    struct RoleCard: Encodable {
        var role: String
        var total: Int
        var reachable: Int
        var unreachable: Int
        var checking: Int
        var url: String
        var active: Bool
    }

    struct Row: Encodable {
        var id: String
        var url: String
        var hostName: String
        var ip: String
        var role: String
        var environment: String
        var environmentURL: String
        var os: String
        var resources: String
        var notes: String
        var notesURL: String
        var health: String
        var label: String
        var reason: String
    }

    struct Page: Encodable {
        var chrome: PageChrome
        var total: Int
        var reachable: Int
        var unreachable: Int
        var checking: Int
        var cards: [RoleCard]
        var allURL: String
        var sequence: String
        var rows: [Row]
        var pagination: PaginationView
        var query: String
        /// The role filter, nil when none (Leaf tests presence, not emptiness).
        var role: String?
        var filtered: Bool
        var canPower: Bool
        var canEditNotes: Bool
    }

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.dashboard.pathComponents, use: dashboard).requires(.viewDashboard).keepingAnswers()
        routes.get(SiteURL.dashboardEvents.pathComponents, use: events).requires(.viewDashboard)
        routes.post(SiteURL.vmsPower.pathComponents, use: batchPower).requires(.powerVM)
        routes.post(SiteURL.vmNotes(id: nil).pathComponents, use: editNotes).requires(.editVMNotes)
        routes.get(SiteURL.search.pathComponents, use: search).requires(.viewEnvironments)
    }

    static func rows(_ listings: [VMListing]) -> [Row] {
        listings.map { vm in
            Row(
                id: vm.id.uuidString, url: SiteURL.vm(id: vm.id).relative, hostName: vm.hostName, ip: vm.ip, role: vm.role,
                environment: vm.environment, environmentURL: SiteURL.environment(id: vm.environmentID).relative,
                os: vm.guestOS ?? "—", resources: vm.resources, notes: vm.notes, notesURL: SiteURL.vmNotes(id: vm.id).relative,
                health: vm.health, label: vm.healthLabel, reason: vm.reason)
        }
    }

    @Sendable static func dashboard(request: Request) async throws -> View {
        let parameters = QueryParameters(request.url.query)
        let filter = try VMDirectory.Filter(parameters)
        let pageRequest = try PageRequest(page: parameters.first("page"), per: parameters.first("per"))
        let fleet = request.application.fleetStatus
        // The summary first: its sequence is where the page's event stream starts, so nothing
        // that changes while the list is read is missed.
        let summary = await fleet.summary()
        let listings = await VMListing.page(try await request.vmDirectory.list(filter, page: pageRequest), fleet: fleet)
        let role = request.auth.get(User.self)?.role
        let path = SiteURL.dashboard.relative
        let cards = summary.roles.map { count in
            RoleCard(
                role: count.role, total: count.total, reachable: count.reachable, unreachable: count.unreachable,
                checking: count.checking, url: path + "?" + WebPath.query([("role", count.role)]), active: filter.role == count.role)
        }
        return try await request.view.render(
            "dashboard",
            Page(
                chrome: PageChrome(request, title: "Dashboard"), total: summary.total, reachable: summary.reachable,
                unreachable: summary.unreachable, checking: summary.checking, cards: cards, allURL: path,
                sequence: String(summary.sequence), rows: rows(listings.items),
                pagination: PaginationView(listings, path: path, query: filter.queryItems), query: parameters.first("q") ?? "",
                role: filter.role, filtered: filter != VMDirectory.Filter(),
                canPower: Action.powerVM.isAllowed(for: role), canEditNotes: Action.editVMNotes.isAllowed(for: role)))
    }

    @Sendable static func events(request: Request) async throws -> Response {
        try DashboardEvents.response(for: request)
    }

    /// The list's batch form: power on / off / restart the checked VMs, in one job (SPEC VM-12).
    @Sendable static func batchPower(request: Request) async throws -> Response {
        let form = QueryParameters(request.body.string)
        let action = try PowerAction(parsing: form.first("action") ?? "")
        let ids = try form.all("vm").map { text in
            guard let id = UUID(uuidString: text) else { throw FlotillaError.validation("'\(text.prefix(40))' is not a VM ID") }
            return id
        }
        guard !ids.isEmpty else { throw FlotillaError.validation("select at least one VM") }
        return request.redirect(to: SiteURL.job(id: try await request.vms.power(ids, action: action)).relative)
    }

    @Sendable static func editNotes(request: Request) async throws -> Response {
        let id = try request.uuidParameter("VM")
        try await request.vmNotes.set(id, notes: QueryParameters(request.body.string).first("notes") ?? "")
        request.notice("Notes saved.")
        return request.redirect(to: SiteURL.vm(id: id).relative)
    }

    struct SearchPage: Encodable {
        struct EnvironmentHit: Encodable {
            var name: String
            var url: String
            var description: String
        }

        var chrome: PageChrome
        var query: String
        var environments: [EnvironmentHit]
        var vms: [Row]
        var moreVMsURL: String?
    }

    /// SPEC DASH-7: environments and VMs by name, IP or role, from the box on every page.
    @Sendable static func search(request: Request) async throws -> View {
        let parameters = QueryParameters(request.url.query)
        let filter = try VMDirectory.Filter(query: VMDirectory.Filter(parameters).query)
        let found = try await GlobalSearch(database: request.db).run(filter)
        let listings = await VMListing.page(found.vms, fleet: request.application.fleetStatus)
        return try await request.view.render(
            "search",
            SearchPage(
                chrome: PageChrome(request, title: "Search"), query: parameters.first("q") ?? "",
                environments: try found.environments.map { environment in
                    SearchPage.EnvironmentHit(
                        name: environment.name, url: SiteURL.environment(id: try environment.requireID()).relative,
                        description: environment.description)
                },
                vms: rows(listings.items),
                moreVMsURL: found.vms.total > found.vms.items.count
                    ? SiteURL.dashboard.relative + "?" + WebPath.query(filter.queryItems) : nil))
    }
}
