import Fluent
import Vapor

/// `/api/v1/roles` (SPEC "role").
enum RolesAPI {
    static func register(_ api: any RoutesBuilder) {
        api.get("roles", use: list).requires(.viewEnvironments)
        api.post("roles", use: add).requires(.changeSettings)
        api.patch("roles", ":id", use: edit).requires(.changeSettings)
    }

    @Sendable static func list(request: Request) async throws -> [API.RoleBody] {
        try await Role.query(on: request.db).sort(\.$name).all().map(API.RoleBody.init)
    }

    @Sendable static func add(request: Request) async throws -> Response {
        let role = try await request.roles.save(try request.content.decode(Roles.Input.self))
        return try await API.RoleBody(role).encodeResponse(status: .created, for: request)
    }

    @Sendable static func edit(request: Request) async throws -> API.RoleBody {
        guard let role = try await Role.find(try request.uuidParameter("role"), on: request.db) else {
            throw FlotillaError.notFound("no such role")
        }
        return try API.RoleBody(try await request.roles.save(try request.content.decode(Roles.Input.self), existing: role))
    }
}

extension API {
    struct RoleBody: Content {
        var id: UUID
        var name: String
        var connectionID: UUID
        var template: String
        var cpus: Int?
        var memoryMB: Int?
        var sshUser: String
        var networkStyle: String
        var services: [String]

        init(_ role: Role) throws {
            id = try role.requireID()
            name = role.name
            connectionID = role.$connection.id
            template = role.template
            cpus = role.cpus
            memoryMB = role.memoryMB
            sshUser = role.sshUser
            networkStyle = role.networkStyle
            services = role.services.split(separator: ",").map(String.init)
        }
    }
}
