import Fluent
import Vapor

/// `/api/v1/connections` (SPEC "Settings": vSphere connections).
enum ConnectionsAPI {
    static func register(_ api: any RoutesBuilder) {
        api.get("connections", use: list).requires(.viewSettings)
        api.post("connections", use: add).requires(.changeSettings)
        api.post("connections", "test", use: test).requires(.changeSettings)
        api.get("connections", ":id", "templates", use: templates).requires(.viewSettings)
        api.delete("connections", ":id", use: delete).requires(.changeSettings)
    }

    @Sendable static func list(request: Request) async throws -> [API.ConnectionBody] {
        try await VSphereConnection.query(on: request.db).sort(\.$name).all().map(API.ConnectionBody.init)
    }

    @Sendable static func add(request: Request) async throws -> Response {
        let connection = try await request.connections.add(try request.content.decode(Connections.Input.self))
        return try await API.ConnectionBody(connection).encodeResponse(status: .created, for: request)
    }

    @Sendable static func test(request: Request) async throws -> Connections.Report {
        try await request.connections.test(try request.content.decode(Connections.Input.self))
    }

    @Sendable static func templates(request: Request) async throws -> [String] {
        try await request.connections.templates(of: try request.uuidParameter("connection"))
    }

    @Sendable static func delete(request: Request) async throws -> HTTPStatus {
        try await request.connections.delete(try request.uuidParameter("connection"))
        return .noContent
    }
}

extension API {
    struct ConnectionBody: Content {
        var id: UUID
        var name: String
        var url: String
        var username: String
        var thumbprint: String?
        var datacenter: String?
        var vmFolder: String?
        var resourcePool: String?
        var datastore: String?
        var network: String?

        init(_ connection: VSphereConnection) throws {
            id = try connection.requireID()
            name = connection.name
            url = connection.url
            username = connection.username
            thumbprint = connection.thumbprint
            datacenter = connection.datacenter
            vmFolder = connection.vmFolder
            resourcePool = connection.resourcePool
            datastore = connection.datastore
            network = connection.network
        }
    }
}
