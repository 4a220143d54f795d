import Fluent
import SQLKit

/// CPU and memory of a VM every 20 s (SPEC BEY-7), kept for a day. `at` is the sample's
/// Unix time rounded down to its 20 s tick, so a sample read twice is stored once.
struct CreateVMMetricSamples: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(MetricTables.samples)
            .field("vm_id", .uuid, .required, .references(VM.schema, .id, onDelete: .cascade))
            .field("at", .int64, .required)
            .field("cpu", .double)
            .field("memory", .double)
            .unique(on: "vm_id", "at")
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        // Retention deletes by age over all VMs.
        try await sql.create(index: "vm_metric_samples_at").on(MetricTables.samples).column("at").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(MetricTables.samples).delete()
    }
}
