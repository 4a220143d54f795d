import Fluent
import Foundation

/// A role's application (issue 12 §1): where its code comes from, where it lives on the guest,
/// how it is built, restarted and judged healthy, and how many releases the guest keeps.
final class UpgradeApplication: Model, @unchecked Sendable {
    static let schema = "upgrade_applications"

    @ID(key: .id) var id: UUID?
    @Field(key: "role_id") var roleID: UUID
    @Field(key: "repository_kind") var repositoryKind: String
    @Field(key: "repository_url") var repositoryURL: String
    /// The Git branch a hook follows and the default revision; nil for SVN.
    @OptionalField(key: "branch") var branch: String?
    /// `RepositoryCredentials` as JSON, sealed with `SecretBox`; never shown back.
    @OptionalField(key: "credentials_sealed") var credentialsSealed: String?
    @Field(key: "deploy_directory") var deployDirectory: String
    @OptionalField(key: "build_command") var buildCommand: String?
    @Field(key: "restart_command") var restartCommand: String
    @Field(key: "health_kind") var healthKind: String
    @Field(key: "health_target") var healthTarget: String
    /// How long a batch may take to become healthy before the gate fails.
    @Field(key: "health_timeout_seconds") var healthTimeoutSeconds: Int
    @Field(key: "releases_kept") var releasesKept: Int
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}

    var location: RepositoryLocation {
        get throws {
            guard let kind = RepositoryLocation.Kind(rawValue: repositoryKind) else {
                throw FlotillaError.conflict("the application's repository kind '\(repositoryKind)' is unknown")
            }
            return try RepositoryLocation(kind: kind, url: repositoryURL)
        }
    }

    /// The repository with its credentials opened, for the platform's fetch only.
    func repositoryAccess(secrets: SecretBox) throws -> RepositoryAccess {
        var access = RepositoryAccess(location: try location)
        if let credentialsSealed {
            access.credentials = try JSONDecoder().decode(RepositoryCredentials.self, from: Data(try secrets.open(credentialsSealed).utf8))
        }
        return access
    }
}

/// One upgrade (or environment rollback) of an application in an environment, beside its job.
final class UpgradeRollout: Model, @unchecked Sendable {
    static let schema = "upgrade_rollouts"

    enum State: String, Codable, Sendable {
        case running, succeeded, halted
    }

    @ID(key: .id) var id: UUID?
    @Field(key: "application_id") var applicationID: UUID
    @Field(key: "environment_id") var environmentID: UUID
    @OptionalField(key: "job_id") var jobID: UUID?
    @Field(key: "requested_revision") var requestedRevision: String
    /// The resolved revision: full Git commit id or SVN revision number.
    @Field(key: "revision") var revision: String
    /// `user:NAME` or `hook:NAME`.
    @Field(key: "trigger") var trigger: String
    @Enum(key: "state") var state: State
    @OptionalField(key: "reason") var reason: String?
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}
}

/// Where one VM stands in one rollout: its batch, the release it left and got, and the outcome.
final class UpgradeRolloutVM: Model, @unchecked Sendable {
    static let schema = "upgrade_rollout_vms"

    enum State: String, Codable, Sendable {
        case queued, staged
        case stageFailed = "stage_failed"
        case switched
        case switchFailed = "switch_failed"
        case healthy
        case switchedBack = "switched_back"
    }

    @ID(key: .id) var id: UUID?
    @Field(key: "rollout_id") var rolloutID: UUID
    @Field(key: "vm_id") var vmID: UUID
    @Field(key: "batch") var batch: Int
    @Enum(key: "state") var state: State
    @OptionalField(key: "from_release") var fromRelease: String?
    @OptionalField(key: "detail") var detail: String?

    init() {}
}

/// What an application's release on a VM is now and was before (read back from the guest
/// after every switch), for the upgrade page.
final class UpgradeVMRelease: Model, @unchecked Sendable {
    static let schema = "upgrade_vm_releases"

    @ID(key: .id) var id: UUID?
    @Field(key: "vm_id") var vmID: UUID
    @Field(key: "application_id") var applicationID: UUID
    @OptionalField(key: "current_release") var currentRelease: String?
    @OptionalField(key: "previous_release") var previousRelease: String?
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}
}

/// A revision that was rolled back (issue 12 §4): auto-upgrade never applies it again, and a
/// person must say so explicitly to roll it out.
final class UpgradeBadRevision: Model, @unchecked Sendable {
    static let schema = "upgrade_bad_revisions"

    @ID(key: .id) var id: UUID?
    @Field(key: "application_id") var applicationID: UUID
    @Field(key: "revision") var revision: String
    @Field(key: "reason") var reason: String
    @Field(key: "marked_by") var markedBy: String
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?

    init() {}
}
