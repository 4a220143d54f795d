import Fluent

/// vCenter or ESXi connections.
struct CreateVSphereConnections: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(VSphereConnection.schema)
            .id()
            .field("name", .string, .required)
            .field("url", .string, .required)
            .field("username", .string, .required)
            .field("password_sealed", .string, .required)
            .field("thumbprint", .string)
            .field("datacenter", .string)
            .field("vm_folder", .string)
            .field("resource_pool", .string)
            .field("datastore", .string)
            .field("network", .string)
            .field("created_at", .datetime)
            .unique(on: "name")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(VSphereConnection.schema).delete()
    }
}
