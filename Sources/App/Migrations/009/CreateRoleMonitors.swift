import Fluent

/// A role's watched services (SPEC MON-2), as JSON: the agents' configuration is built from it.
struct CreateRoleMonitors: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(RoleMonitor.schema)
            .id()
            .field("role_id", .uuid, .required, .references(Role.schema, .id, onDelete: .cascade))
            .field("services", .string, .required)
            .field("updated_at", .datetime)
            .unique(on: "role_id")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(RoleMonitor.schema).delete()
    }
}
