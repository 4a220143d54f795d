import Fluent
import Vapor

/// The dashboard in `/api/v1` (SPEC DASH-1..7, VM-12, VM-14, BEY-3): the summary, the VM list
/// with its filters, the event stream, a VM's reachability history and drift, notes, and
/// batch power.
enum DashboardAPI {
    static func register(_ api: any RoutesBuilder) {
        api.get("dashboard", use: summary).requires(.viewDashboard).keepingAnswers()
        api.get("dashboard", "events", use: events).requires(.viewDashboard)
        api.get("vms", use: list).requires(.viewVMs).keepingAnswers()
        api.post("vms", "power", use: power).requires(.powerVM)
        api.get("vms", ":id", "reachability", use: history).requires(.viewVMs)
        api.get("vms", ":id", "drift", use: drift).requires(.viewVMs)
        api.put("vms", ":id", "notes", use: notes).requires(.editVMNotes)
    }

    @Sendable static func summary(request: Request) async throws -> Response {
        var json = JSONWriter(capacity: 512)
        API.DashboardSummary(await request.application.fleetStatus.summary()).write(to: &json)
        return json.response()
    }

    @Sendable static func events(request: Request) async throws -> Response {
        try DashboardEvents.response(for: request)
    }

    @Sendable static func list(request: Request) async throws -> Response {
        let parameters = QueryParameters(request.url.query)
        let page = try PageRequest(page: parameters.first("page"), per: parameters.first("per"))
        let rows = try await request.vmDirectory.list(try VMDirectory.Filter(parameters), page: page)
        return ListResponse(await VMListing.page(rows, fleet: request.application.fleetStatus)).writtenResponse()
    }

    @Sendable static func power(request: Request) async throws -> Response {
        let input = try request.content.decode(API.BatchPowerInput.self)
        let jobID = try await request.vms.power(input.vms, action: try PowerAction(parsing: input.action))
        return try await API.JobReference.accepted(jobID, for: request)
    }

    @Sendable static func history(request: Request) async throws -> ListResponse<API.ReachabilityChangeBody> {
        let id = try request.uuidParameter("VM")
        _ = try await request.vms.find(id)
        let parameters = QueryParameters(request.url.query)
        let page = try PageRequest(page: parameters.first("page"), per: parameters.first("per"))
        let query = ReachabilityChangeRecord.query(on: request.db).filter(\.$vm.$id == id)
        let total = try await query.count()
        let items = try await query.sort(\.$at, .descending).range(page.offset..<(page.offset + page.per)).all()
        return ListResponse(Page(items: items.map(API.ReachabilityChangeBody.init), total: total, request: page))
    }

    @Sendable static func drift(request: Request) async throws -> ListResponse<API.DriftBody> {
        let id = try request.uuidParameter("VM")
        _ = try await request.vms.find(id)
        let parameters = QueryParameters(request.url.query)
        let page = try PageRequest(page: parameters.first("page"), per: parameters.first("per"))
        let query = VMDrift.query(on: request.db).filter(\.$vm.$id == id)
        let total = try await query.count()
        let items = try await query.sort(\.$at, .descending).range(page.offset..<(page.offset + page.per)).all()
        return ListResponse(Page(items: items.map(API.DriftBody.init), total: total, request: page))
    }

    @Sendable static func notes(request: Request) async throws -> API.VMBody {
        let id = try request.uuidParameter("VM")
        try await request.vmNotes.set(id, notes: try request.content.decode(API.NotesInput.self).notes)
        return try API.VMBody(try await request.vms.find(id))
    }
}

extension API {
    struct DashboardSummary: Content {
        var total: Int
        var reachable: Int
        var unreachable: Int
        var checking: Int
        var roles: [FleetStatus.RoleCount]
        /// Pass as `since` to the event stream to miss nothing after this answer.
        var sequence: UInt64

        init(_ summary: FleetStatus.Summary) {
            total = summary.total
            reachable = summary.reachable
            unreachable = summary.unreachable
            checking = summary.checking
            roles = summary.roles
            sequence = summary.sequence
        }
    }

    struct BatchPowerInput: Content {
        var vms: [UUID]
        var action: String
    }

    struct NotesInput: Content {
        var notes: String
    }

    struct ReachabilityChangeBody: Content {
        var health: String
        var previous: String
        var reason: String
        var at: Date

        init(_ record: ReachabilityChangeRecord) {
            health = record.health
            previous = record.previous
            reason = record.reason
            at = record.at
        }
    }

    struct DriftBody: Content {
        var field: String
        var recorded: String
        var observed: String
        var at: Date

        init(_ drift: VMDrift) {
            field = drift.field
            recorded = drift.recorded
            observed = drift.observed
            at = drift.at
        }
    }
}

extension API.DashboardSummary: JSONWritable {
    func write(to json: inout JSONWriter) {
        json.object { json in
            json.field("total", total)
            json.field("reachable", reachable)
            json.field("unreachable", unreachable)
            json.field("checking", checking)
            json.key("roles")
            json.array(roles) { json, count in
                json.object { json in
                    json.field("role", count.role)
                    json.field("total", count.total)
                    json.field("reachable", count.reachable)
                    json.field("unreachable", count.unreachable)
                    json.field("checking", count.checking)
                }
            }
            json.field("sequence", sequence)
        }
    }
}
