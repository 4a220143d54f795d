import Fluent
import SQLKit

/// VMs and what Flotilla knows of them.
struct CreateVMs: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(VM.schema)
            .id()
            .field("environment_id", .uuid, .required, .references(Environment.schema, .id))
            .field("role_id", .uuid, .required, .references(Role.schema, .id))
            .field("host_name", .string, .required)
            .field("ip", .string, .required)
            .field("prefix_length", .int, .required)
            .field("gateway", .string, .required)
            .field("dns1", .string)
            .field("dns2", .string)
            .field("password_sealed", .string, .required)
            .field("vsphere_ref", .string)
            .field("status", .string, .required)
            .field("status_reason", .string)
            .field("power_state", .string)
            .field("guest_os", .string)
            .field("cpus", .int)
            .field("memory_mb", .int)
            .field("disk_gb", .double)
            .field("notes", .string, .required)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .unique(on: "host_name")
            .unique(on: "ip")
            .create()

        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "vms_environment").on(VM.schema).column("environment_id").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(VM.schema).delete()
    }
}
