import Fluent
import SQLKit

/// Changes made to VMs outside Flotilla, as vSphere reported them (SPEC BEY-4).
struct CreateVMDrifts: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(VMDrift.schema)
            .id()
            .field("vm_id", .uuid, .required, .references(VM.schema, .id, onDelete: .cascade))
            .field("field", .string, .required)
            .field("recorded", .string, .required)
            .field("observed", .string, .required)
            .field("at", .datetime, .required)
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "vm_drifts_vm_at").on(VMDrift.schema).column("vm_id").column("at").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(VMDrift.schema).delete()
    }
}
