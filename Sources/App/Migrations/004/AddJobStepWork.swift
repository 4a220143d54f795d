import Fluent
import SQLKit

/// A step's work as data (SPEC BEY-8): its kind, its JSON parameters, its phase and its vSphere
/// connection, so that any instance can run it from its row. Rows from before have no kind.
struct AddJobStepWork: AsyncMigration {
    func prepare(on database: any Database) async throws {
        // One column per statement: SQLite adds one at a time.
        try await database.schema(JobStep.schema).field("kind", .string).update()
        try await database.schema(JobStep.schema).field("parameters", .string).update()
        try await database.schema(JobStep.schema).field("phase", .int, .required, .sql(.default(0))).update()
        try await database.schema(JobStep.schema).field("connection_id", .uuid).update()
    }

    func revert(on database: any Database) async throws {
        for field: FieldKey in ["connection_id", "phase", "parameters", "kind"] {
            try await database.schema(JobStep.schema).deleteField(field).update()
        }
    }
}
