import Fluent

/// Which of the platform's SSH keys a VM trusts (it changes with key rotation).
struct AddVMPlatformKey: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(VM.schema).field("platform_key_id", .uuid).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(VM.schema).deleteField("platform_key_id").update()
    }
}
