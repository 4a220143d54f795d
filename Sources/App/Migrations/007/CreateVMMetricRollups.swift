import Fluent
import SQLKit

/// Minimum, average and maximum of a VM's samples per 5 minutes (kept 30 days) and per hour
/// (kept a year), with how many samples each summarises so coarser averages stay exact.
struct CreateVMMetricRollups: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(MetricTables.rollups)
            .field("vm_id", .uuid, .required, .references(VM.schema, .id, onDelete: .cascade))
            .field("resolution", .int, .required)
            .field("at", .int64, .required)
            .field("cpu_min", .double)
            .field("cpu_avg", .double)
            .field("cpu_max", .double)
            .field("cpu_count", .int64, .required)
            .field("memory_min", .double)
            .field("memory_avg", .double)
            .field("memory_max", .double)
            .field("memory_count", .int64, .required)
            .unique(on: "vm_id", "resolution", "at")
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        // Retention and the hourly rollup read one resolution by age over all VMs.
        try await sql.create(index: "vm_metric_rollups_resolution_at").on(MetricTables.rollups)
            .column("resolution").column("at").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(MetricTables.rollups).delete()
    }
}
