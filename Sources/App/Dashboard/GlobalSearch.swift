import Fluent
import SQLKit
import Vapor

/// The search box on every page (SPEC DASH-7): environments by name, VMs by name (fuzzy), IP
/// or role.
struct GlobalSearch {
    let database: any Database

    /// Most hits of each kind on the results page; the VM list has the rest.
    static let limit = 20

    struct Result {
        var environments: [Environment]
        var vms: Page<VMDirectory.Row>
    }

    func run(_ filter: VMDirectory.Filter) async throws -> Result {
        guard let query = filter.query else {
            return Result(environments: [], vms: Page(items: [], total: 0, request: PageRequest(page: 1, per: Self.limit)))
        }
        let environments: [Environment]
        if let sql = database as? any SQLDatabase {
            let ids = try await sql.select().column("id").from(Environment.schema)
                .where(SQLFunction("LOWER", args: SQLColumn("name")), .like, SQLBind("%" + query + "%"))
                .orderBy("name").limit(Self.limit).all(decoding: IDRow.self).map(\.id)
            environments = ids.isEmpty ? [] : try await Environment.query(on: database).filter(\.$id ~~ ids).sort(\.$name).all()
        } else {
            environments = []
        }
        let vms = try await VMDirectory(database: database).list(filter, page: PageRequest(page: 1, per: Self.limit))
        return Result(environments: environments, vms: vms)
    }

    private struct IDRow: Decodable {
        var id: UUID
    }
}
