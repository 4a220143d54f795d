import Fluent
import Foundation

/// One change of a VM's health, kept as its reachability history.
final class ReachabilityChangeRecord: Model, @unchecked Sendable {
    static let schema = "reachability_changes"

    @ID(key: .id) var id: UUID?
    @Parent(key: "vm_id") var vm: VM
    @Field(key: "health") var health: String
    @Field(key: "previous") var previous: String
    /// The reason as shown, e.g. "network unreachable (guest running, 3 probes unanswered)".
    @Field(key: "reason") var reason: String
    @Field(key: "at") var at: Date

    init() {}

    init(vmID: UUID, health: VMHealth, previous: VMHealth, reason: String, at: Date) {
        $vm.id = vmID
        self.health = health.rawValue
        self.previous = previous.rawValue
        self.reason = reason
        self.at = at
    }
}

/// A difference between Flotilla's record of a VM and what vSphere reports, noticed by the
/// inventory feed (SPEC BEY-4).
final class VMDrift: Model, @unchecked Sendable {
    static let schema = "vm_drifts"

    @ID(key: .id) var id: UUID?
    @Parent(key: "vm_id") var vm: VM
    /// `cpus`, `memoryMB`, `diskGB`, `name` or `address`.
    @Field(key: "field") var field: String
    @Field(key: "recorded") var recorded: String
    @Field(key: "observed") var observed: String
    @Field(key: "at") var at: Date

    init() {}

    init(vmID: UUID, field: String, recorded: String, observed: String, at: Date) {
        $vm.id = vmID
        self.field = field
        self.recorded = recorded
        self.observed = observed
        self.at = at
    }
}
