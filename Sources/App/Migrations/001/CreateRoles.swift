import Fluent

/// Roles: what a VM does and the template it is cloned from.
struct CreateRoles: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(Role.schema)
            .id()
            .field("name", .string, .required)
            .field("connection_id", .uuid, .required, .references(VSphereConnection.schema, .id))
            .field("template", .string, .required)
            .field("cpus", .int)
            .field("memory_mb", .int)
            .field("ssh_user", .string, .required)
            .field("network_style", .string, .required)
            .field("services", .string, .required)
            .field("created_at", .datetime)
            .unique(on: "name")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Role.schema).delete()
    }
}
