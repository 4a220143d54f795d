import Fluent
import Foundation

/// Where a repository's commits come in (issue 12 §6): one endpoint per repository and sender
/// format, with its own secret. The secret is sealed (HMAC formats need it back to verify) and
/// shown to the operator once, when the hook is made.
final class UpgradeHook: Model, @unchecked Sendable {
    static let schema = "upgrade_hooks"

    @ID(key: .id) var id: UUID?
    /// `UpgradeHookFormat`'s raw value: who sends, in which payload, signed how.
    @Field(key: "format") var format: String
    /// The repository as applications name it (Git URL, or an SVN URL that applications' URLs lie under).
    @Field(key: "repository_url") var repositoryURL: String
    @Field(key: "secret_sealed") var secretSealed: String
    @OptionalField(key: "created_by") var createdBy: String?
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @OptionalField(key: "last_delivery_at") var lastDeliveryAt: Date?
    /// What the last delivery did, for the page ("rev 42 queued for 2 environments", "bad signature").
    @OptionalField(key: "last_result") var lastResult: String?

    init() {}
}

/// The auto-upgrade switch of one application in one environment, with its branch filter.
final class AutoUpgrade: Model, @unchecked Sendable {
    static let schema = "auto_upgrades"

    @ID(key: .id) var id: UUID?
    @Field(key: "application_id") var applicationID: UUID
    @Field(key: "environment_id") var environmentID: UUID
    @Field(key: "enabled") var enabled: Bool
    /// Comma-separated branch patterns (`main`, `release/*`); empty: the application's own branch.
    @Field(key: "branches") var branches: String
    @OptionalField(key: "changed_by") var changedBy: String?
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}
}

/// A burst of commits waiting for its quiet period to end: at most one row per application
/// and environment, so five commits in a burst are one row and become one rollout. Rows live in
/// the database so that any instance may receive a hook and the leader of the `auto-upgrade`
/// periodic task, whichever instance it is (also after a restart), starts the rollout.
final class PendingAutoUpgrade: Model, @unchecked Sendable {
    static let schema = "pending_auto_upgrades"

    @ID(key: .id) var id: UUID?
    @Field(key: "application_id") var applicationID: UUID
    @Field(key: "environment_id") var environmentID: UUID
    @Field(key: "hook_id") var hookID: UUID
    /// The newest revision of the burst: commit id (Git) or revision number (SVN).
    @Field(key: "revision") var revision: String
    /// Orders revisions within a burst: the SVN revision number, or the arrival time (ms) for Git.
    @Field(key: "revision_order") var revisionOrder: Int64
    /// Who pushed or committed the newest revision, as the sender reported it.
    @Field(key: "pushed_by") var pushedBy: String
    @Field(key: "deliveries") var deliveries: Int
    @Field(key: "first_at") var firstAt: Date
    /// The rollout starts once the database's clock passes this.
    @Field(key: "due_at") var dueAt: Date

    init() {}
}
