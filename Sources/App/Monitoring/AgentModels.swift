import Fluent
import Foundation

/// A VM's agent credential: the secret its reports are signed with, sealed with `SecretBox`.
final class AgentCredential: Model, @unchecked Sendable {
    static let schema = "agent_credentials"

    @ID(key: .id) var id: UUID?
    @Field(key: "vm_id") var vmID: UUID
    @Field(key: "secret_sealed") var secretSealed: String
    /// Where the agent reports to (as the guest reaches the platform), kept for later configuration pushes.
    @Field(key: "platform_url") var platformURL: String
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?

    init() {}

    init(vmID: UUID, secretSealed: String, platformURL: String) {
        self.vmID = vmID
        self.secretSealed = secretSealed
        self.platformURL = platformURL
    }
}

/// One event an agent reported (restarted, recovered, gave up, recovered from giving up).
final class AgentEventRecord: Model, @unchecked Sendable {
    static let schema = "agent_events"

    @ID(key: .id) var id: UUID?
    @Field(key: "vm_id") var vmID: UUID
    @Field(key: "epoch") var epoch: String
    @Field(key: "sequence") var sequence: Int64
    @Field(key: "kind") var kind: String
    @Field(key: "service") var service: String
    @Field(key: "attempts") var attempts: Int
    @OptionalField(key: "outage_started_at") var outageStartedAt: Date?
    @Field(key: "occurred_at") var occurredAt: Date
    @Field(key: "received_at") var receivedAt: Date

    init() {}
}

/// The last heartbeat of a VM's agent; `silentSince` is set once three heartbeats are missed.
final class AgentStatus: Model, @unchecked Sendable {
    static let schema = "agent_statuses"

    @ID(key: .id) var id: UUID?
    @Field(key: "vm_id") var vmID: UUID
    @Field(key: "last_heartbeat_at") var lastHeartbeatAt: Date
    @Field(key: "agent_version") var agentVersion: String
    /// The services as JSON (`[AgentReport.ServiceState]`), validated before they are stored.
    @Field(key: "services") var servicesJSON: String
    @Field(key: "queued_events") var queuedEvents: Int
    @OptionalField(key: "silent_since") var silentSince: Date?
    /// The agent process that sent it (new at each agent start; nil from agents before version 2).
    @OptionalField(key: "agent_instance") var agentInstance: String?

    init() {}

    var services: [AgentReport.ServiceState] {
        (try? JSONDecoder().decode([AgentReport.ServiceState].self, from: Data(servicesJSON.utf8))) ?? []
    }
}

/// A role's watched services (`MonitoredService` list as JSON).
final class RoleMonitor: Model, @unchecked Sendable {
    static let schema = "role_monitors"

    @ID(key: .id) var id: UUID?
    @Field(key: "role_id") var roleID: UUID
    @Field(key: "services") var servicesJSON: String
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}
}
