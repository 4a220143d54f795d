import Fluent
import Vapor

/// What a VM's agent last reported, for the VM page and the API (SPEC MON-4).
struct AgentDirectory {
    let database: any Database
    static let recentEvents = 20

    func services(of vmID: UUID, for request: Request) async throws -> API.VMServices {
        guard try await VM.find(vmID, on: database) != nil else { throw FlotillaError.notFound("no such VM") }
        let status = try await AgentStatus.query(on: database).filter(\.$vmID == vmID).first()
        let events = try await AgentEventRecord.query(on: database).filter(\.$vmID == vmID)
            .sort(\.$occurredAt, .descending).sort(\.$sequence, .descending).range(..<Self.recentEvents).all()
        let state = status.map { $0.silentSince == nil ? "reporting" : "silent" } ?? "not installed"
        return API.VMServices(
            agent: .init(
                state: state, lastHeartbeatAt: status?.lastHeartbeatAt, silentSince: status?.silentSince, version: status?.agentVersion,
                queuedEvents: status?.queuedEvents),
            services: (status?.services ?? []).map {
                .init(
                    name: $0.name, state: $0.state, restarts: $0.restarts, failures: $0.failures, attempts: $0.attempts,
                    since: Date(timeIntervalSince1970: $0.since))
            },
            events: events.map {
                .init(
                    kind: $0.kind, service: $0.service, attempts: $0.attempts, outageStartedAt: $0.outageStartedAt,
                    occurredAt: $0.occurredAt)
            },
            canControl: Action.controlVMServices.isAllowed(for: request.auth.get(User.self)?.role))
    }
}
