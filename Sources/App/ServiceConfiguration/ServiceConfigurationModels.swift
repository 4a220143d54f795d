import Fluent
import Foundation

/// A service profile kept in the database (SPEC CFG-1): its name, the version in use and its
/// secrets' values, sealed. Every saved document is a `ServiceProfileVersion`.
final class ServiceProfileRecord: Model, @unchecked Sendable {
    static let schema = "service_profiles"

    @ID(key: .id) var id: UUID?
    @Field(key: "name") var name: String
    @Field(key: "current_version") var currentVersion: Int
    /// The secrets' values as a JSON object `{name: value}`, sealed with the platform's `SecretBox`.
    @Field(key: "secrets_sealed") var secretsSealed: String
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}
}

/// One saved text of a profile; versions count up from 1 and are never changed.
final class ServiceProfileVersion: Model, @unchecked Sendable {
    static let schema = "service_profile_versions"

    @ID(key: .id) var id: UUID?
    @Field(key: "profile_id") var profileID: UUID
    @Field(key: "version") var version: Int
    @Field(key: "document") var document: String
    @Field(key: "author") var author: String
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?

    init() {}
}

/// One pass of the wizard (SPEC CFG-1..3): the profile version and environment, the VM chosen
/// for each dependency role, and the last check's verdict. Configure starts jobs from it.
final class ConfigurationRun: Model, @unchecked Sendable {
    static let schema = "configuration_runs"

    @ID(key: .id) var id: UUID?
    @Field(key: "profile_id") var profileID: UUID
    @Field(key: "version") var version: Int
    @Field(key: "environment_id") var environmentID: UUID
    /// JSON `{role: vmID}`.
    @Field(key: "dependencies") var dependenciesJSON: String
    @OptionalField(key: "check_passed") var checkPassed: Bool?
    /// The last check's report as JSON (no secret values).
    @OptionalField(key: "check_report") var checkReport: String?
    @OptionalField(key: "checked_at") var checkedAt: Date?
    @OptionalField(key: "last_job_id") var lastJobID: UUID?
    @Field(key: "created_by") var createdBy: String
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?

    init() {}

    var dependencies: [String: UUID] {
        (try? JSONDecoder().decode([String: UUID].self, from: Data(dependenciesJSON.utf8))) ?? [:]
    }
}

/// What Flotilla last wrote to one file of one VM: the drift check compares the guest's file with it.
final class AppliedConfigurationFile: Model, @unchecked Sendable {
    static let schema = "applied_configuration_files"

    @ID(key: .id) var id: UUID?
    @Field(key: "vm_id") var vmID: UUID
    @Field(key: "path") var path: String
    @Field(key: "profile_id") var profileID: UUID
    @Field(key: "version") var version: Int
    @Field(key: "run_id") var runID: UUID
    /// SHA-256 of the file as written, in hex.
    @Field(key: "sha256") var sha256: String
    @Field(key: "applied_at") var appliedAt: Date
    /// Set by the last drift check: nil when it matched, else what differs.
    @OptionalField(key: "drift") var drift: String?
    @OptionalField(key: "drift_checked_at") var driftCheckedAt: Date?

    init() {}
}
