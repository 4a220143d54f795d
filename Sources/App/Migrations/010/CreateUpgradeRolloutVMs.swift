import Fluent

/// Each VM's batch and outcome in a rollout (issue 12 §4, §7).
struct CreateUpgradeRolloutVMs: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(UpgradeRolloutVM.schema)
            .id()
            .field("rollout_id", .uuid, .required, .references(UpgradeRollout.schema, .id, onDelete: .cascade))
            .field("vm_id", .uuid, .required, .references(VM.schema, .id, onDelete: .cascade))
            .field("batch", .int, .required)
            .field("state", .string, .required)
            .field("from_release", .string)
            .field("detail", .string)
            .unique(on: "rollout_id", "vm_id")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(UpgradeRolloutVM.schema).delete()
    }
}
