import Fluent

/// Wizard passes: profile version, environment, chosen dependency VMs, the check's verdict.
struct CreateConfigurationRuns: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(ConfigurationRun.schema)
            .id()
            .field("profile_id", .uuid, .required, .references(ServiceProfileRecord.schema, .id, onDelete: .cascade))
            .field("version", .int, .required)
            .field("environment_id", .uuid, .required, .references(Environment.schema, .id, onDelete: .cascade))
            .field("dependencies", .string, .required)
            .field("check_passed", .bool)
            .field("check_report", .string)
            .field("checked_at", .datetime)
            .field("last_job_id", .uuid)
            .field("created_by", .string, .required)
            .field("created_at", .datetime)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(ConfigurationRun.schema).delete()
    }
}
