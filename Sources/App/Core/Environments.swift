import Fluent
import SQLKit
import Vapor

/// Environments (SPEC VM-1..4): named groups of VMs. Deleting or powering them is a job whose
/// steps `VMOperations` runs.
struct Environments {
    let database: any Database
    let jobs: JobEngine
    let operations: VMOperations
    let actor: AuditLog.Actor
    let logger: Logger

    struct Row: Content {
        var id: UUID
        var name: String
        var description: String
        var vmCount: Int
    }

    static func validateName(_ name: String) throws {
        guard !name.isEmpty, name.count <= 64,
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
        else {
            throw FlotillaError.validation("environment name has 1 to 64 letters, digits, '-', '_' or '.'")
        }
    }

    func add(name: String, description: String) async throws -> Environment {
        let name = name.trimmingCharacters(in: .whitespaces)
        try Self.validateName(name)
        guard description.count <= 2000 else { throw FlotillaError.validation("description has at most 2000 characters") }
        guard try await Environment.query(on: database).filter(\.$name == name).count() == 0 else {
            throw FlotillaError.conflict("an environment named '\(name)' already exists")
        }
        let environment = Environment(name: name, description: description)
        try await environment.create(on: database)
        await audit("environment.add", "added environment '\(name)'")
        return environment
    }

    func find(_ id: UUID) async throws -> Environment {
        guard let environment = try await Environment.find(id, on: database) else { throw FlotillaError.notFound("no such environment") }
        return environment
    }

    func edit(_ id: UUID, description: String) async throws -> Environment {
        let environment = try await find(id)
        guard description.count <= 2000 else { throw FlotillaError.validation("description has at most 2000 characters") }
        environment.description = description
        try await environment.save(on: database)
        await audit("environment.edit", "changed the description of '\(environment.name)'")
        return environment
    }

    /// One page of environments by name with their VM counts, in one statement: the total rides
    /// along as an uncorrelated subquery (computed once), and the VMs are counted only for the
    /// page's rows. Only a page past the end costs a second statement, for the total.
    func list(page: PageRequest) async throws -> Page<Row> {
        guard let sql = database as? any SQLDatabase else { throw FlotillaError(.unavailable, "environments need an SQL database") }
        let rows = try await sql.raw(
            """
            SELECT e.id, e.name, e.description,
                (SELECT COUNT(*) FROM vms v WHERE v.environment_id = e.id) AS vm_count,
                (SELECT COUNT(*) FROM environments) AS total
            FROM environments e ORDER BY e.name LIMIT \(bind: page.per) OFFSET \(bind: page.offset)
            """
        ).all()
        let items = try rows.map { row in
            Row(
                id: try row.decode(column: "id", as: UUID.self), name: try row.decode(column: "name", as: String.self),
                description: try row.decode(column: "description", as: String.self),
                vmCount: try row.decode(column: "vm_count", as: Int.self))
        }
        guard let first = rows.first else {
            return Page(items: [], total: try await Environment.query(on: database).count(), request: page)
        }
        return Page(items: items, total: try first.decode(column: "total", as: Int.self), request: page)
    }

    /// Deletes environments: their VMs are destroyed on vSphere first, then the records go (SPEC VM-3).
    func delete(_ ids: [UUID]) async throws -> UUID {
        let environments = try await Environment.query(on: database).filter(\.$id ~~ ids).with(\.$vms) { $0.with(\.$role) }.all()
        guard environments.count == Set(ids).count, !ids.isEmpty else { throw FlotillaError.notFound("no such environment") }
        var plans: [StepPlan] = []
        for environment in environments {
            plans += try environment.vms.map { vm in try operations.destroyStep(vm) }
            plans.append(try operations.environmentRecordStep(environment, phase: 1))
        }
        return try await jobs.submit(
            kind: "environment.delete",
            title: "Delete \(environments.map(\.name).joined(separator: ", "))", by: actor, steps: plans)
    }

    /// SPEC VM-4: power every VM of the environments on, off, or restart them.
    func power(_ ids: [UUID], action: PowerAction) async throws -> UUID {
        let environments = try await Environment.query(on: database).filter(\.$id ~~ ids).with(\.$vms) { $0.with(\.$role) }.all()
        guard environments.count == Set(ids).count, !ids.isEmpty else { throw FlotillaError.notFound("no such environment") }
        let plans = try environments.flatMap(\.vms).filter { $0.vsphereReference != nil }.map { try operations.powerStep($0, action) }
        return try await jobs.submit(
            kind: "environment.power",
            title: "Power \(action.rawValue) \(environments.map(\.name).joined(separator: ", "))",
            by: actor, steps: plans)
    }

    private func audit(_ action: String, _ details: String) async {
        await AuditLog.record(.operation, action: action, result: .success, details: details, by: actor, on: database, logger: logger)
    }
}

extension Environments.Row: JSONWritable {
    func write(to json: inout JSONWriter) {
        json.object { json in
            json.field("id", id)
            json.field("name", name)
            json.field("description", description)
            json.field("vmCount", vmCount)
        }
    }
}

extension Request {
    var environments: Environments {
        let flotilla = application.flotilla
        return Environments(database: db, jobs: flotilla.jobs, operations: flotilla.vmOperations, actor: auditActor, logger: logger)
    }
}
