import Fluent

/// Per rollup resolution, the time up to which rollups are complete: the next pass starts
/// there, and series read newer buckets from the samples.
struct CreateMetricRollupMarks: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(MetricTables.marks)
            .field("resolution", .int, .identifier(auto: false))
            .field("done_until", .int64, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(MetricTables.marks).delete()
    }
}
