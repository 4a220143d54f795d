import Fluent

/// Environments: named groups of VMs.
struct CreateEnvironments: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(Environment.schema)
            .id()
            .field("name", .string, .required)
            .field("description", .string, .required)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .unique(on: "name")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Environment.schema).delete()
    }
}
