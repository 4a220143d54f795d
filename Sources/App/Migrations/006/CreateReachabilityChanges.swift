import Fluent
import SQLKit

/// Each VM's health changes with their times (SPEC DASH-5, DASH-6), newest read first.
struct CreateReachabilityChanges: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(ReachabilityChangeRecord.schema)
            .id()
            .field("vm_id", .uuid, .required, .references(VM.schema, .id, onDelete: .cascade))
            .field("health", .string, .required)
            .field("previous", .string, .required)
            .field("reason", .string, .required)
            .field("at", .datetime, .required)
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "reachability_changes_vm_at").on(ReachabilityChangeRecord.schema).column("vm_id").column("at").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(ReachabilityChangeRecord.schema).delete()
    }
}
