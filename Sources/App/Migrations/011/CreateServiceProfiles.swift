import Fluent

/// Service profiles (SPEC CFG-1): name, version in use, sealed secret values.
struct CreateServiceProfiles: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(ServiceProfileRecord.schema)
            .id()
            .field("name", .string, .required)
            .field("current_version", .int, .required)
            .field("secrets_sealed", .string, .required)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .unique(on: "name")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(ServiceProfileRecord.schema).delete()
    }
}
