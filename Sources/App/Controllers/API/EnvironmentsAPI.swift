import Fluent
import Vapor

/// `/api/v1/environments` (SPEC VM-1..5).
enum EnvironmentsAPI {
    static func register(_ api: any RoutesBuilder) {
        api.get("environments", use: list).requires(.viewEnvironments).keepingAnswers()
        api.post("environments", use: add).requires(.addEnvironment)
        api.post("environments", "power", use: power).requires(.powerVM)
        api.post("environments", "delete", use: deleteSeveral).requires(.deleteEnvironment)
        api.get("environments", ":id", use: show).requires(.viewEnvironments)
        api.get("environments", ":id", "live", use: liveStatus).requires(.viewEnvironments)
        api.patch("environments", ":id", use: edit).requires(.editEnvironment)
        api.delete("environments", ":id", use: delete).requires(.deleteEnvironment)
    }

    @Sendable static func list(request: Request) async throws -> Response {
        let query = QueryParameters(request.url.query)
        let page = try await request.environments.list(page: try PageRequest(page: query.first("page"), per: query.first("per")))
        return ListResponse(page).writtenResponse()
    }

    @Sendable static func add(request: Request) async throws -> Response {
        let input = try request.content.decode(API.EnvironmentInput.self)
        let environment = try await request.environments.add(name: input.name, description: input.description ?? "")
        return try await API.EnvironmentBody(
            id: try environment.requireID(), name: environment.name, description: environment.description, vms: []
        )
        .encodeResponse(status: .created, for: request)
    }

    @Sendable static func show(request: Request) async throws -> API.EnvironmentBody {
        let environment = try await request.environments.find(try request.uuidParameter("environment"))
        let vms = try await environment.$vms.query(on: request.db).with(\.$role).sort(\.$hostName).all()
        return API.EnvironmentBody(
            id: try environment.requireID(), name: environment.name, description: environment.description,
            vms: try vms.map(API.VMBody.init))
    }

    @Sendable static func liveStatus(request: Request) async throws -> [LiveStatus.LiveVM] {
        try await request.liveStatus.of(environment: try request.uuidParameter("environment"))
    }

    @Sendable static func edit(request: Request) async throws -> API.EnvironmentBody {
        let input = try request.content.decode(API.DescriptionInput.self)
        _ = try await request.environments.edit(try request.uuidParameter("environment"), description: input.description)
        return try await show(request: request)
    }

    @Sendable static func delete(request: Request) async throws -> Response {
        try await API.JobReference.accepted(try await request.environments.delete([try request.uuidParameter("environment")]), for: request)
    }

    @Sendable static func deleteSeveral(request: Request) async throws -> Response {
        try await API.JobReference.accepted(
            try await request.environments.delete(try request.content.decode(API.IDs.self).ids), for: request)
    }

    @Sendable static func power(request: Request) async throws -> Response {
        let input = try request.content.decode(API.PowerInput.self)
        let jobID = try await request.environments.power(input.ids ?? [], action: try PowerAction(parsing: input.action))
        return try await API.JobReference.accepted(jobID, for: request)
    }
}

extension API {
    struct EnvironmentInput: Content {
        var name: String
        var description: String?
    }

    struct DescriptionInput: Content {
        var description: String
    }

    struct EnvironmentBody: Content {
        var id: UUID
        var name: String
        var description: String
        var vms: [VMBody]
    }

    struct PowerInput: Content {
        var action: String
        var ids: [UUID]?
    }

    struct IDs: Content {
        var ids: [UUID]
    }
}
