import Fluent
import SQLKit
import Vapor

/// `/api/v1/instances` and `/api/v1/health`: the instances sharing the database (SPEC BEY-8).
enum InstancesAPI {
    static func register(_ api: any RoutesBuilder) {
        api.get("instances", use: list).requires(.viewInstances)
        api.get("health", use: health).requires(.checkHealth)
    }

    @Sendable static func list(request: Request) async throws -> [InstanceSummary] {
        try await request.instances.list()
    }

    /// What a load balancer needs: whether this instance can reach the database, and which
    /// instance answered. Nothing else, since anyone may ask.
    struct Health: Content {
        var status: String
        var instance: UUID
    }

    @Sendable static func health(request: Request) async throws -> Response {
        let instance = request.application.instance.id
        do {
            guard let sql = request.db as? any SQLDatabase else { throw HealthError.notSQL }
            _ = try await sql.raw("SELECT 1").all()
            return try await Health(status: "ok", instance: instance).encodeResponse(status: .ok, for: request)
        } catch {
            request.logger.warning("health check: the database does not answer: \(FlotillaError.describe(error))")
            return try await Health(status: "database unavailable", instance: instance)
                .encodeResponse(status: .serviceUnavailable, for: request)
        }
    }

    private enum HealthError: Error, CustomStringConvertible {
        case notSQL
        var description: String { "the database is not an SQL database" }
    }
}
