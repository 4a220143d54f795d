import Fluent
import SQLKit

/// Each VM's current health as the instance leading the sweep sees it, so every other instance's
/// pages show the same live state (SPEC BEY-8); read by time of change.
struct CreateVMHealthStates: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(SharedHealth.schema)
            .field("vm_id", .uuid, .identifier(auto: false), .references(VM.schema, .id, onDelete: .cascade))
            .field("health", .string, .required)
            .field("reason", .string, .required)
            .field("since", .datetime, .required)
            .field("updated_at", .datetime, .required)
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "vm_health_states_updated_at").on(SharedHealth.schema).column("updated_at").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(SharedHealth.schema).delete()
    }
}
