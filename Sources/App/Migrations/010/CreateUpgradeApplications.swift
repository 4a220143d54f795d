import Fluent

/// Applications per role (issue 12 §1); one per role.
struct CreateUpgradeApplications: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(UpgradeApplication.schema)
            .id()
            .field("role_id", .uuid, .required, .references(Role.schema, .id, onDelete: .cascade))
            .field("repository_kind", .string, .required)
            .field("repository_url", .string, .required)
            .field("branch", .string)
            .field("credentials_sealed", .string)
            .field("deploy_directory", .string, .required)
            .field("build_command", .string)
            .field("restart_command", .string, .required)
            .field("health_kind", .string, .required)
            .field("health_target", .string, .required)
            .field("health_timeout_seconds", .int, .required)
            .field("releases_kept", .int, .required)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .unique(on: "role_id")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(UpgradeApplication.schema).delete()
    }
}
