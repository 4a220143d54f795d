import Fluent
import Vapor

/// `/api/v1/agent/…`: what monitor agents send (authenticated by the VM's agent credential and
/// signature, never by a user), and `/api/v1/vms/{id}/services`: what they reported, for people.
enum AgentAPI {
    /// An event batch holds at most 100 events of a few hundred bytes each.
    static let maximumBody: ByteCount = "256kb"

    static func register(_ api: any RoutesBuilder) {
        api.on(.POST, "agent", "heartbeat", body: .collect(maxSize: maximumBody), use: heartbeat).requires(.reportAgentStatus)
        api.on(.POST, "agent", "events", body: .collect(maxSize: maximumBody), use: events).requires(.reportAgentStatus)
        api.get("vms", ":id", "services", use: services).requires(.viewVMs)
        api.post("vms", ":id", "agent", use: install).requires(.configureServices)
        api.post("vms", ":id", "services", ":service", ":action", use: control).requires(.controlVMServices)
    }

    @Sendable static func heartbeat(request: Request) async throws -> Response {
        let body = request.body.data ?? ByteBuffer()
        let ingestion = request.agentIngestion
        let agent = try await ingestion.authenticate(request, body: body)
        try await ingestion.heartbeat(try decode(AgentReport.Heartbeat.self, body), from: agent, request: request)
        return try await API.AgentAnswer(acknowledged: nil).encodeResponse(for: request)
    }

    @Sendable static func events(request: Request) async throws -> API.AgentAnswer {
        let body = request.body.data ?? ByteBuffer()
        let ingestion = request.agentIngestion
        let agent = try await ingestion.authenticate(request, body: body)
        let acknowledged = try await ingestion.events(try decode(AgentReport.Events.self, body), from: agent, request: request)
        return API.AgentAnswer(acknowledged: acknowledged)
    }

    private static func decode<Value: Decodable>(_ type: Value.Type, _ body: ByteBuffer) throws -> Value {
        do {
            return try JSONDecoder().decode(type, from: body)
        } catch {
            throw FlotillaError.validation("the report is not valid JSON of the agent's format")
        }
    }

    /// Installs (or reinstalls) the monitor agent on a VM: a job (SPEC MON-1).
    @Sendable static func install(request: Request) async throws -> Response {
        let input = try request.content.decode(API.AgentInstallInput.self)
        let jobID = try await request.agentRollout.install(on: try request.uuidParameter("VM"), platformURL: input.platformURL)
        return try await API.JobReference.accepted(jobID, for: request)
    }

    @Sendable static func services(request: Request) async throws -> API.VMServices {
        try await AgentDirectory(database: request.db).services(of: try request.uuidParameter("VM"), for: request)
    }

    /// Start, stop or restart a watched service through the VM's agent (SPEC VM-13).
    @Sendable static func control(request: Request) async throws -> API.VMServices {
        let vmID = try request.uuidParameter("VM")
        guard let action = ServiceAction(rawValue: request.parameters.get("action") ?? "") else {
            throw FlotillaError.validation("the action is start, stop or restart")
        }
        let service = request.parameters.get("service") ?? ""
        try await request.serviceControl.perform(action, service: service, on: vmID)
        return try await AgentDirectory(database: request.db).services(of: vmID, for: request)
    }
}

extension API {
    /// Where the VM's agent reports to, as the guest reaches the platform.
    struct AgentInstallInput: Content {
        var platformURL: String
    }

    /// The platform's answer to an agent: for events, the last sequence it stored (or had).
    struct AgentAnswer: Content {
        var acknowledged: Int64?
    }

    /// A VM's watched services as its agent last reported them, with the latest events.
    struct VMServices: Content {
        var agent: AgentState
        var services: [Service]
        var events: [Event]
        /// Whether the asking user may start, stop and restart them (system administrators).
        var canControl: Bool

        struct AgentState: Content {
            /// `not installed` (no heartbeat yet), `reporting` or `silent`.
            var state: String
            var lastHeartbeatAt: Date?
            var silentSince: Date?
            var version: String?
            var queuedEvents: Int?
        }

        struct Service: Content {
            var name: String
            var state: String
            var restarts: Int
            var failures: Int
            var attempts: Int
            var since: Date
        }

        struct Event: Content {
            var kind: String
            var service: String
            var attempts: Int
            var outageStartedAt: Date?
            var occurredAt: Date
        }
    }
}
