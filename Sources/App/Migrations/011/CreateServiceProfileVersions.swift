import Fluent

/// Every saved text of a service profile, numbered per profile.
struct CreateServiceProfileVersions: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(ServiceProfileVersion.schema)
            .id()
            .field("profile_id", .uuid, .required, .references(ServiceProfileRecord.schema, .id, onDelete: .cascade))
            .field("version", .int, .required)
            .field("document", .string, .required)
            .field("author", .string, .required)
            .field("created_at", .datetime)
            .unique(on: "profile_id", "version")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(ServiceProfileVersion.schema).delete()
    }
}
