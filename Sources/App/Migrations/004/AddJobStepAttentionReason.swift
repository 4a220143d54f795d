import Fluent

/// Why a step needs a person's attention (it could not be run or resumed safely).
struct AddJobStepAttentionReason: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(JobStep.schema).field("attention_reason", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(JobStep.schema).deleteField("attention_reason").update()
    }
}
