import Fluent

/// Each VM's monitor agent signs its reports with a secret of its own (SPEC MON-4), sealed here
/// because the platform needs it to check signatures.
struct CreateAgentCredentials: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(AgentCredential.schema)
            .id()
            .field("vm_id", .uuid, .required, .references(VM.schema, .id, onDelete: .cascade))
            .field("secret_sealed", .string, .required)
            .field("platform_url", .string, .required)
            .field("created_at", .datetime)
            .unique(on: "vm_id")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(AgentCredential.schema).delete()
    }
}
