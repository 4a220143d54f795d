import Fluent
import Vapor

/// VM roles (SPEC "role"): what a VM does and how it is made. A role's template must exist on
/// its connection, so saving one asks vSphere.
struct Roles {
    let database: any Database
    let connections: Connections
    let actor: AuditLog.Actor
    let logger: Logger

    struct Input: Content {
        var name: String
        var connectionID: UUID
        var template: String
        var cpus: Int?
        var memoryMB: Int?
        var sshUser: String?
        var services: String?
        /// The watched services of the role's monitor agents (SPEC MON-2); nil leaves them as they are.
        var monitor: [MonitoredService]? = nil
    }

    func save(_ input: Input, existing: Role? = nil) async throws -> Role {
        let name = input.name.trimmingCharacters(in: .whitespaces).lowercased()
        // A role's name becomes part of host names (`{env}-{role}-{n}`), so it is one host-name label.
        guard name.count <= 32, !name.contains("."), (try? VMSpec.validateHostName(name)) != nil else {
            throw FlotillaError.validation("role name has 1 to 32 letters, digits and inner hyphens (it becomes part of host names)")
        }
        let typedUser = input.sshUser?.trimmingCharacters(in: .whitespaces) ?? ""
        let sshUser = typedUser.isEmpty ? "root" : typedUser
        guard sshUser.count <= 32, sshUser.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw FlotillaError.validation("SSH user must be a plain Unix user name")
        }
        if let cpus = input.cpus, !(1...128).contains(cpus) { throw FlotillaError.validation("CPUs must be 1 to 128") }
        if let memory = input.memoryMB, !(128...(4 << 20)).contains(memory) {
            throw FlotillaError.validation("memory must be 128 MB to 4 TB")
        }
        let services = (input.services ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard services.allSatisfy({ $0.count <= 64 && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) } })
        else {
            throw FlotillaError.validation("services are process names separated by commas")
        }
        let monitors = RoleMonitors(database: database)
        if let monitor = input.monitor { try await monitors.validate(monitor) }
        let templates = try await connections.templates(of: input.connectionID)
        guard templates.contains(input.template) else {
            throw FlotillaError.validation(
                "'\(input.template.prefix(64))' is not a template on that connection (it has: \(templates.joined(separator: ", ")))")
        }
        if let other = try await Role.query(on: database).filter(\.$name == name).first(), other.id != existing?.id {
            throw FlotillaError.conflict("a role named '\(name)' already exists")
        }
        let role = existing ?? Role()
        role.name = name
        role.$connection.id = input.connectionID
        role.template = input.template
        role.cpus = input.cpus
        role.memoryMB = input.memoryMB
        role.sshUser = sshUser
        role.networkStyle = NetworkStyle.ifupdown.rawValue
        role.services = services.joined(separator: ",")
        try await role.save(on: database)
        if let monitor = input.monitor { try await monitors.save(monitor, for: try role.requireID()) }
        await AuditLog.record(
            .operation, action: existing == nil ? "settings.role.add" : "settings.role.edit", result: .success,
            details: "saved role '\(name)' (template \(input.template))"
                + (input.monitor.map { "; watched services: \($0.map(\.name).joined(separator: ", "))" } ?? ""), by: actor, on: database,
            logger: logger)
        return role
    }
}

extension Request {
    var roles: Roles {
        Roles(database: db, connections: connections, actor: auditActor, logger: logger)
    }
}
