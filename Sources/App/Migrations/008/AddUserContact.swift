import Fluent

/// Users gain an e-mail address and a full name (SPEC USR-7): service owners are platform users.
struct AddUserContact: AsyncMigration {
    func prepare(on database: any Database) async throws {
        // One column per statement: SQLite adds a single column per ALTER TABLE.
        try await database.schema(User.schema).field("email", .string).update()
        try await database.schema(User.schema).field("full_name", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(User.schema).deleteField("full_name").update()
        try await database.schema(User.schema).deleteField("email").update()
    }
}
