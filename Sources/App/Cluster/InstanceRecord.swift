import Fluent
import Foundation

/// One start of a Flotilla instance, kept up to date by its heartbeat (see `InstanceHeartbeat`).
final class InstanceRecord: Model, @unchecked Sendable {
    static let schema = "instances"

    @ID(key: .id) var id: UUID?
    @Field(key: "address") var address: String
    @Field(key: "version") var version: String
    @Field(key: "started_at") var startedAt: Date
    @Field(key: "last_heartbeat_at") var lastHeartbeatAt: Date
    /// Set by an orderly shutdown; an instance that died keeps nil and just stops beating.
    @OptionalField(key: "stopped_at") var stoppedAt: Date?

    init() {}

    init(identity: InstanceIdentity, now: Date) {
        id = identity.id
        address = identity.address
        version = identity.version
        startedAt = identity.startedAt
        lastHeartbeatAt = now
    }
}
