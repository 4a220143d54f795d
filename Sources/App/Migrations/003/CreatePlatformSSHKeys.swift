import Fluent

/// The installation's own SSH key pairs (SPEC BEY-9), kept so that keys can be rotated.
struct CreatePlatformSSHKeys: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(PlatformSSHKey.schema)
            .id()
            .field("public_key", .string, .required)
            .field("fingerprint", .string, .required)
            .field("private_key_sealed", .string)
            .field("created_at", .datetime)
            .field("retired_at", .datetime)
            .unique(on: "fingerprint")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(PlatformSSHKey.schema).delete()
    }
}
