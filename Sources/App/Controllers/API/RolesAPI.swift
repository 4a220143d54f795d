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
        let monitors = RoleMonitors(database: request.db)
        var bodies: [API.RoleBody] = []
        for role in try await Role.query(on: request.db).sort(\.$name).all() {
            bodies.append(try API.RoleBody(role, monitor: try await monitors.services(of: role.requireID())))
        }
        return bodies
    }

    @Sendable static func add(request: Request) async throws -> Response {
        let role = try await request.roles.save(try request.content.decode(Roles.Input.self))
        return try await API.RoleBody(role, monitor: try await RoleMonitors(database: request.db).services(of: role.requireID()))
            .encodeResponse(status: .created, for: request)
    }

    @Sendable static func edit(request: Request) async throws -> API.RoleBody {
        guard let role = try await Role.find(try request.uuidParameter("role"), on: request.db) else {
            throw FlotillaError.notFound("no such role")
        }
        let input = try request.content.decode(Roles.Input.self)
        let saved = try await request.roles.save(input, existing: role)
        // Changed monitor settings reach every installed agent of the role (a job, per-VM results).
        if input.monitor != nil { _ = try await request.agentRollout.configure(role: saved) }
        return try API.RoleBody(saved, monitor: try await RoleMonitors(database: request.db).services(of: saved.requireID()))
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
        /// The watched services of the role's monitor agents (SPEC MON-2).
        var monitor: [MonitoredService]

        init(_ role: Role, monitor: [MonitoredService]) throws {
            self.monitor = monitor
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
