import Fluent

/// A VM's SSH host key, pinned to the VM rather than to its address (SPEC BEY-9).
struct AddVMHostKey: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(VM.schema).field("host_key", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(VM.schema).deleteField("host_key").update()
    }
}
