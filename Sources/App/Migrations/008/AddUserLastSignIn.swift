import Fluent

/// When each user last signed in, for the user list (SPEC USR-7). Kept on the user rather
/// than read from the audit log, which may be deleted (LOG-4).
struct AddUserLastSignIn: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(User.schema).field("last_sign_in_at", .datetime).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(User.schema).deleteField("last_sign_in_at").update()
    }
}
