import Fluent
import Vapor
import RemoteShell
import SQLKit
import VSphere

/// Environments, VMs, vSphere connections and roles: the rules shared by the web pages and
/// the API (SPEC VM-1..10). Anything that touches vSphere or a guest becomes a job.
struct Inventory {
    let database: any Database
    let context: FlotillaContext
    let actor: AuditLog.Actor
    let logger: Logger

    // MARK: vSphere connections

    struct ConnectionInput: Content {
        var name: String
        var url: String
        var username: String
        var password: String
        var thumbprint: String?
        var datacenter: String?
        var vmFolder: String?
        var resourcePool: String?
        var datastore: String?
        var network: String?
    }

    /// What a connection test saw (SPEC: show `about`, datacenters and templates).
    struct ConnectionReport: Content {
        var product: String
        var apiType: String
        var apiVersion: String
        var datacenters: [String]
        var templates: [String]
    }

    func validate(_ input: ConnectionInput) throws -> ConnectionInput {
        var input = input
        input.name = input.name.trimmingCharacters(in: .whitespaces)
        guard !input.name.isEmpty, input.name.count <= 64 else { throw FlotillaError.validation("connection name has 1 to 64 characters") }
        guard let url = URL(string: input.url), ["https", "http"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
            throw FlotillaError.validation("URL must be http(s)://host[:port]/sdk")
        }
        guard !input.username.isEmpty, !input.password.isEmpty else { throw FlotillaError.validation("user name and password are required") }
        if let thumbprint = input.thumbprint?.trimmingCharacters(in: .whitespaces), !thumbprint.isEmpty {
            let hex = thumbprint.replacingOccurrences(of: ":", with: "")
            guard hex.count == 64, hex.allSatisfy(\.isHexDigit) else {
                throw FlotillaError.validation("thumbprint must be a SHA-256 certificate fingerprint (64 hex digits, colons allowed)")
            }
            input.thumbprint = thumbprint
        } else {
            input.thumbprint = nil
        }
        for keyPath in [\ConnectionInput.datacenter, \.vmFolder, \.resourcePool, \.datastore, \.network] {
            let value = input[keyPath: keyPath]?.trimmingCharacters(in: .whitespaces)
            input[keyPath: keyPath] = value?.isEmpty == false ? value : nil
        }
        return input
    }

    /// Logs in with the given settings and reports what the server shows.
    func test(_ input: ConnectionInput) async throws -> ConnectionReport {
        let input = try validate(input)
        let connection = VSphereConnection()
        connection.url = input.url
        connection.username = input.username
        connection.thumbprint = input.thumbprint
        let client: VSphereClient
        do {
            client = try await VSphereSessions.connect(connection, password: input.password, logger: logger)
        } catch {
            throw FlotillaError(.unavailable, "cannot reach vSphere at \(input.url): \(JobEngine.describe(error))")
        }
        defer { Task { try? await client.close() } }
        let datacenters = try await client.list(.datacenter).map(\.name).sorted()
        let templates = try await client.listVirtualMachines().filter(\.isTemplate).map(\.name).sorted()
        return ConnectionReport(product: client.about.fullName, apiType: client.about.apiType?.rawValue ?? "unknown",
                                apiVersion: client.about.apiVersion, datacenters: datacenters, templates: templates)
    }

    func addConnection(_ input: ConnectionInput) async throws -> VSphereConnection {
        let input = try validate(input)
        guard try await VSphereConnection.query(on: database).filter(\.$name == input.name).count() == 0 else {
            throw FlotillaError.conflict("a connection named '\(input.name)' already exists")
        }
        let connection = VSphereConnection()
        connection.name = input.name
        connection.url = input.url
        connection.username = input.username
        connection.passwordSealed = try context.secrets.seal(input.password)
        connection.thumbprint = input.thumbprint
        connection.datacenter = input.datacenter
        connection.vmFolder = input.vmFolder
        connection.resourcePool = input.resourcePool
        connection.datastore = input.datastore
        connection.network = input.network
        try await connection.create(on: database)
        await audit("settings.connection.add", "added vSphere connection '\(connection.name)' (\(connection.url))")
        return connection
    }

    func deleteConnection(_ id: UUID) async throws {
        guard let connection = try await VSphereConnection.find(id, on: database) else { throw FlotillaError.notFound("no such connection") }
        guard try await Role.query(on: database).filter(\.$connection.$id == id).count() == 0 else {
            throw FlotillaError.conflict("roles still use '\(connection.name)'; change or delete them first")
        }
        try await connection.delete(on: database)
        await context.vsphere.forget(id)
        await audit("settings.connection.delete", "deleted vSphere connection '\(connection.name)'")
    }

    func templates(of connectionID: UUID) async throws -> [String] {
        guard let connection = try await VSphereConnection.find(connectionID, on: database) else { throw FlotillaError.notFound("no such connection") }
        let client = try await context.vsphere.client(for: connection)
        return try await client.listVirtualMachines().filter(\.isTemplate).map(\.name).sorted()
    }

    // MARK: Roles

    struct RoleInput: Content {
        var name: String
        var connectionID: UUID
        var template: String
        var cpus: Int?
        var memoryMB: Int?
        var sshUser: String?
        var services: String?
    }

    func saveRole(_ input: RoleInput, existing: Role? = nil) async throws -> Role {
        let name = input.name.trimmingCharacters(in: .whitespaces).lowercased()
        guard !name.isEmpty, name.count <= 32, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }), name.allSatisfy(\.isASCII) else {
            throw FlotillaError.validation("role name has 1 to 32 letters, digits, '-' or '_'")
        }
        let typedUser = input.sshUser?.trimmingCharacters(in: .whitespaces) ?? ""
        let sshUser = typedUser.isEmpty ? "root" : typedUser
        guard sshUser.count <= 32, sshUser.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw FlotillaError.validation("SSH user must be a plain Unix user name")
        }
        if let cpus = input.cpus, !(1...128).contains(cpus) { throw FlotillaError.validation("CPUs must be 1 to 128") }
        if let memory = input.memoryMB, !(128...(4 << 20)).contains(memory) { throw FlotillaError.validation("memory must be 128 MB to 4 TB") }
        let services = (input.services ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard services.allSatisfy({ $0.count <= 64 && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) } }) else {
            throw FlotillaError.validation("services are process names separated by commas")
        }
        let templates = try await self.templates(of: input.connectionID)
        guard templates.contains(input.template) else {
            throw FlotillaError.validation("'\(input.template.prefix(64))' is not a template on that connection (it has: \(templates.joined(separator: ", ")))")
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
        role.networkStyle = "ifupdown"
        role.services = services.joined(separator: ",")
        try await role.save(on: database)
        await audit(existing == nil ? "settings.role.add" : "settings.role.edit", "saved role '\(name)' (template \(input.template))")
        return role
    }

    // MARK: Environments

    static func validateEnvironmentName(_ name: String) throws {
        guard !name.isEmpty, name.count <= 64,
              name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw FlotillaError.validation("environment name has 1 to 64 letters, digits, '-', '_' or '.'")
        }
    }

    func addEnvironment(name: String, description: String) async throws -> Environment {
        let name = name.trimmingCharacters(in: .whitespaces)
        try Self.validateEnvironmentName(name)
        guard description.count <= 2000 else { throw FlotillaError.validation("description has at most 2000 characters") }
        guard try await Environment.query(on: database).filter(\.$name == name).count() == 0 else {
            throw FlotillaError.conflict("an environment named '\(name)' already exists")
        }
        let environment = Environment(name: name, description: description)
        try await environment.create(on: database)
        await audit("environment.add", "added environment '\(name)'")
        return environment
    }

    func environment(_ id: UUID) async throws -> Environment {
        guard let environment = try await Environment.find(id, on: database) else { throw FlotillaError.notFound("no such environment") }
        return environment
    }

    func editEnvironment(_ id: UUID, description: String) async throws -> Environment {
        let environment = try await environment(id)
        guard description.count <= 2000 else { throw FlotillaError.validation("description has at most 2000 characters") }
        environment.description = description
        try await environment.save(on: database)
        await audit("environment.edit", "changed the description of '\(environment.name)'")
        return environment
    }

    struct EnvironmentRow: Content {
        var id: UUID
        var name: String
        var description: String
        var vmCount: Int
    }

    func environments(page: PageRequest) async throws -> Page<EnvironmentRow> {
        let total = try await Environment.query(on: database).count()
        let items = try await Environment.query(on: database).sort(\.$name).range(page.offset..<(page.offset + page.per)).all()
        let ids = try items.map { try $0.requireID() }
        var counts: [UUID: Int] = [:]
        if !ids.isEmpty, let sql = database as? any SQLDatabase {
            // Counted by the database: loading every VM of a long page would dominate its time.
            struct Count: Decodable {
                var environment_id: UUID
                var vms: Int
            }
            let rows = try await sql.select()
                .column("environment_id").column(SQLFunction("COUNT", args: SQLLiteral.all), as: "vms")
                .from(VM.schema).where("environment_id", .in, ids).groupBy("environment_id")
                .all(decoding: Count.self)
            for row in rows { counts[row.environment_id] = row.vms }
        }
        return Page(items: try items.map { environment in
            let id = try environment.requireID()
            return EnvironmentRow(id: id, name: environment.name, description: environment.description, vmCount: counts[id] ?? 0)
        }, total: total, request: page)
    }

    /// Deletes environments: their VMs are destroyed on vSphere first, then the records go (SPEC VM-3).
    func deleteEnvironments(_ ids: [UUID]) async throws -> UUID {
        let environments = try await Environment.query(on: database).filter(\.$id ~~ ids).with(\.$vms) { $0.with(\.$role) }.all()
        guard environments.count == Set(ids).count, !ids.isEmpty else { throw FlotillaError.notFound("no such environment") }
        var plans: [StepPlan] = []
        for environment in environments {
            plans += try environment.vms.map { vm in try destroyStep(vm) }
            let environmentID = try environment.requireID()
            let name = environment.name
            plans.append(StepPlan(action: "environment.delete", title: "delete environment \(name)", phase: 1) { [database] _ in
                guard try await VM.query(on: database).filter(\.$environment.$id == environmentID).count() == 0 else {
                    throw FlotillaError.conflict("environment \(name) still has VMs")
                }
                try await Environment.query(on: database).filter(\.$id == environmentID).delete()
            })
        }
        return try await context.jobs.submit(kind: "environment.delete",
                                             title: "Delete \(environments.map(\.name).joined(separator: ", "))", by: actor, steps: plans)
    }

    /// SPEC VM-4: power every VM of the environments on, off, or restart them.
    func powerEnvironments(_ ids: [UUID], action: Provisioning.PowerAction) async throws -> UUID {
        let environments = try await Environment.query(on: database).filter(\.$id ~~ ids).with(\.$vms) { $0.with(\.$role) }.all()
        guard environments.count == Set(ids).count, !ids.isEmpty else { throw FlotillaError.notFound("no such environment") }
        let plans = try environments.flatMap(\.vms).filter { $0.vsphereReference != nil }.map { try powerStep($0, action) }
        return try await context.jobs.submit(kind: "environment.power",
                                             title: "Power \(action.rawValue) \(environments.map(\.name).joined(separator: ", "))",
                                             by: actor, steps: plans)
    }

    // MARK: VMs

    struct VMInput: Content {
        var hostName: String
        var ip: String
        var netmask: String
        var gateway: String
        var dns1: String?
        var dns2: String?
        var role: String
        var password: String
        var passwordConfirmation: String
        var notes: String?
    }

    /// Validates and records a new VM, then starts the job that creates it (SPEC VM-6).
    func addVM(_ input: VMInput, to environmentID: UUID) async throws -> (VM, jobID: UUID) {
        let environment = try await environment(environmentID)
        let spec = try VMSpec(hostName: input.hostName, ip: input.ip, netmask: input.netmask, gateway: input.gateway,
                              dns1: input.dns1, dns2: input.dns2)
        try Self.validateGuestPassword(input.password, confirmation: input.passwordConfirmation)
        guard let role = try await Role.query(on: database).filter(\.$name == input.role).first() else {
            throw FlotillaError.validation("'\(input.role.prefix(64))' is not a known role")
        }
        if try await VM.query(on: database).filter(\.$ip == spec.ip).count() > 0 {
            throw FlotillaError.conflict("\(spec.ip) is already used by another VM")
        }
        if try await VM.query(on: database).filter(\.$hostName == spec.hostName).count() > 0 {
            throw FlotillaError.conflict("a VM named \(spec.hostName) already exists")
        }
        let vm = try VM(environmentID: try environment.requireID(), role: role, spec: spec,
                        passwordSealed: try context.secrets.seal(input.password), status: .provisioning,
                        notes: String((input.notes ?? "").prefix(2000)))
        do {
            try await vm.create(on: database)
        } catch let error as any DatabaseError where error.isConstraintFailure {
            throw FlotillaError.conflict("the IP address or host name is already used by another VM")
        }
        let jobID = try await context.jobs.submit(kind: "vm.create", title: "Create \(vm.hostName) in \(environment.name)",
                                                  by: actor, steps: [try createStep(vm)])
        return (vm, jobID)
    }

    static func validateGuestPassword(_ password: String, confirmation: String) throws {
        guard password == confirmation else { throw FlotillaError.validation("password and confirmation do not match") }
        guard password.count >= 8, password.count <= 128 else { throw FlotillaError.validation("VM password has 8 to 128 characters") }
        guard !password.contains(where: { $0.isNewline || $0 == "\0" }) else { throw FlotillaError.validation("VM password may not contain line breaks") }
    }

    func vm(_ id: UUID) async throws -> VM {
        guard let vm = try await VM.query(on: database).filter(\.$id == id).with(\.$role).with(\.$environment).first() else {
            throw FlotillaError.notFound("no such VM")
        }
        return vm
    }

    func deleteVM(_ id: UUID) async throws -> UUID {
        let vm = try await vm(id)
        return try await context.jobs.submit(kind: "vm.delete", title: "Delete \(vm.hostName)", by: actor, steps: [try destroyStep(vm)])
    }

    func powerVM(_ id: UUID, action: Provisioning.PowerAction) async throws -> UUID {
        let vm = try await vm(id)
        guard vm.vsphereReference != nil else { throw FlotillaError.conflict("\(vm.hostName) has no VM on vSphere") }
        return try await context.jobs.submit(kind: "vm.power", title: "Power \(action.rawValue) \(vm.hostName)", by: actor,
                                             steps: [try powerStep(vm, action)])
    }

    struct PasswordInput: Content {
        var password: String
        var passwordConfirmation: String
    }

    struct NetworkInput: Content {
        var ip: String
        var netmask: String
        var gateway: String
        var dns1: String?
        var dns2: String?
    }

    func changePassword(_ id: UUID, _ input: PasswordInput) async throws -> UUID {
        let vm = try await vm(id)
        try Self.validateGuestPassword(input.password, confirmation: input.passwordConfirmation)
        guard vm.status == .ready else { throw FlotillaError.conflict("\(vm.hostName) is \(vm.status.rawValue), not ready") }
        let provisioning = context.provisioning
        let password = input.password
        return try await context.jobs.submit(kind: "vm.password", title: "Change the password of \(vm.hostName)", by: actor, steps: [
            StepPlan(action: "vm.password", title: "change password of \(vm.hostName)", vmName: vm.hostName, vmRole: vm.role.name,
                     connectionID: vm.role.$connection.id) { context in
                try await provisioning.changePassword(id, to: password, context: context)
            },
        ])
    }

    func changeNetwork(_ id: UUID, _ input: NetworkInput) async throws -> UUID {
        let vm = try await vm(id)
        let spec = try VMSpec(hostName: vm.hostName, ip: input.ip, netmask: input.netmask, gateway: input.gateway,
                              dns1: input.dns1, dns2: input.dns2)
        guard vm.status == .ready else { throw FlotillaError.conflict("\(vm.hostName) is \(vm.status.rawValue), not ready") }
        if spec.ip != vm.ip, try await VM.query(on: database).filter(\.$ip == spec.ip).count() > 0 {
            throw FlotillaError.conflict("\(spec.ip) is already used by another VM")
        }
        let provisioning = context.provisioning
        return try await context.jobs.submit(kind: "vm.network", title: "Change the network of \(vm.hostName) to \(spec.ip)", by: actor, steps: [
            StepPlan(action: "vm.network", title: "change network of \(vm.hostName) to \(spec.ip)/\(spec.prefixLength)",
                     vmName: vm.hostName, vmRole: vm.role.name, connectionID: vm.role.$connection.id) { context in
                try await provisioning.changeNetwork(id, to: spec, context: context)
            },
        ])
    }

    // MARK: Steps

    func createStep(_ vm: VM) throws -> StepPlan {
        let id = try vm.requireID()
        let provisioning = context.provisioning
        return StepPlan(action: "vm.create", title: "create \(vm.hostName)", vmName: vm.hostName, vmRole: vm.role.name,
                        connectionID: vm.role.$connection.id) { context in
            try await provisioning.create(id, context: context)
        }
    }

    private func destroyStep(_ vm: VM) throws -> StepPlan {
        let id = try vm.requireID()
        let provisioning = context.provisioning
        return StepPlan(action: "vm.delete", title: "delete \(vm.hostName)", vmName: vm.hostName, vmRole: vm.role.name,
                        connectionID: vm.role.$connection.id, retryable: true) { context in
            try await provisioning.destroy(id, context: context)
        }
    }

    private func powerStep(_ vm: VM, _ action: Provisioning.PowerAction) throws -> StepPlan {
        let id = try vm.requireID()
        let provisioning = context.provisioning
        return StepPlan(action: "vm.power.\(action.rawValue)", title: "power \(action.rawValue) \(vm.hostName)", vmName: vm.hostName,
                        vmRole: vm.role.name, connectionID: vm.role.$connection.id, retryable: true) { context in
            try await provisioning.power(id, action, context: context)
        }
    }

    private func audit(_ action: String, _ details: String) async {
        await AuditLog.record(.operation, action: action, result: .success, details: details, by: actor, on: database, logger: logger)
    }
}

extension Request {
    var inventory: Inventory {
        Inventory(database: db, context: application.flotilla, actor: auditActor, logger: logger)
    }
}

extension Inventory {
    /// A VM as it is now: power state from vSphere, services from the guest (SPEC VM-5).
    struct LiveVM: Content {
        struct Service: Content {
            var name: String
            var running: Bool
        }

        var id: UUID
        var powerState: String?
        var services: [Service]?
        /// Why the services could not be read (unreachable guest, refused login…).
        var servicesError: String?
    }

    /// Reads the environment's VMs live; the page shows the list first and fills these in,
    /// so a slow host delays only its own row.
    func liveStatus(of environmentID: UUID) async throws -> [LiveVM] {
        let vms = try await VM.query(on: database).filter(\.$environment.$id == environmentID).with(\.$role).all()
        var powerStates: [String: String] = [:]
        for connectionID in Set(vms.map { $0.role.$connection.id }) {
            guard let connection = try await VSphereConnection.find(connectionID, on: database),
                  let client = try? await context.vsphere.client(for: connection),
                  let machines = try? await client.listVirtualMachines() else { continue }
            for machine in machines { powerStates[machine.reference.value] = machine.powerState.rawValue }
        }
        let shell = context.shell
        let secrets = context.secrets
        return try await withThrowingTaskGroup(of: LiveVM.self) { group in
            for vm in vms {
                let id = try vm.requireID()
                let state = vm.vsphereReference.flatMap { powerStates[$0] }
                let names = vm.role.services.split(separator: ",").map(String.init)
                let target = SSHTarget(host: vm.ip, user: vm.role.sshUser, authentication: .password(try secrets.open(vm.passwordSealed)))
                group.addTask {
                    guard state == "poweredOn", !names.isEmpty else {
                        return LiveVM(id: id, powerState: state, services: nil, servicesError: nil)
                    }
                    do {
                        let result = try await shell.run(Command.script(
                            "for s in \"$@\"; do if pgrep -x \"$s\" >/dev/null; then echo \"up $s\"; else echo \"down $s\"; fi; done",
                            arguments: names), on: target, timeout: .seconds(5))
                        let services = result.output.split(separator: "\n").compactMap { line -> LiveVM.Service? in
                            let parts = line.split(separator: " ", maxSplits: 1)
                            guard parts.count == 2 else { return nil }
                            return LiveVM.Service(name: String(parts[1]), running: parts[0] == "up")
                        }
                        return LiveVM(id: id, powerState: state, services: services, servicesError: nil)
                    } catch {
                        return LiveVM(id: id, powerState: state, services: nil, servicesError: JobEngine.describe(error))
                    }
                }
            }
            var answers: [LiveVM] = []
            for try await answer in group { answers.append(answer) }
            return answers
        }
    }
}

extension Inventory {
    struct AdoptInput: Content {
        var connectionID: UUID
        /// Names of VMs on that connection.
        var names: [String]
        var role: String
        /// The guests' SSH password, for the work Flotilla does inside them.
        var password: String
    }

    /// Imports existing vSphere VMs into an environment (SPEC BEY-4). Their network comes
    /// from their cloud-init metadata, or else from the address VMware Tools report.
    func adopt(_ input: AdoptInput, into environmentID: UUID) async throws -> [VM] {
        let environment = try await environment(environmentID)
        guard let connection = try await VSphereConnection.find(input.connectionID, on: database) else {
            throw FlotillaError.notFound("no such connection")
        }
        guard let role = try await Role.query(on: database).filter(\.$name == input.role).first() else {
            throw FlotillaError.validation("'\(input.role.prefix(64))' is not a known role")
        }
        guard !input.names.isEmpty, input.names.count <= 1000 else { throw FlotillaError.validation("name 1 to 1000 VMs") }
        try Self.validateGuestPassword(input.password, confirmation: input.password)
        let client = try await context.vsphere.client(for: connection)
        var adopted: [VM] = []
        for name in input.names {
            let machine: VirtualMachine
            do {
                machine = try await client.findVirtualMachine(named: name)
            } catch {
                throw FlotillaError.notFound("vSphere has no VM named '\(name.prefix(64))'")
            }
            let summary = try await machine.summary()
            guard !summary.isTemplate else { throw FlotillaError.validation("\(name) is a template") }
            if try await VM.query(on: database).filter(\.$vsphereReference == summary.reference.value).count() > 0 {
                throw FlotillaError.conflict("\(name) is already managed by Flotilla")
            }
            let metadata = try? GuestConfiguration(guestInfo: summary.guestInfo)
            guard let ip = metadata?.ipv4?.address ?? summary.guestIPAddress else {
                throw FlotillaError.validation("\(name) has neither network metadata nor a reported address")
            }
            let prefix = metadata?.ipv4?.prefixLength ?? 24
            let gateway = metadata?.ipv4?.gateway ?? IPv4(value: (IPv4(ip)?.network(prefix).value ?? 0) + 1).description
            let dns = metadata?.ipv4?.dns ?? []
            let spec = try VMSpec(hostName: metadata?.hostName ?? summary.guestHostName ?? name, ip: ip, netmask: String(prefix),
                                  gateway: gateway, dns1: dns.first, dns2: dns.count > 1 ? dns[1] : nil)
            if try await VM.query(on: database).group(.or, { $0.filter(\.$ip == spec.ip).filter(\.$hostName == spec.hostName) }).count() > 0 {
                throw FlotillaError.conflict("\(spec.hostName) (\(spec.ip)) clashes with a VM Flotilla already has")
            }
            let vm = try VM(environmentID: try environment.requireID(), role: role, spec: spec,
                            passwordSealed: try context.secrets.seal(input.password), status: .ready,
                            notes: "adopted from \(connection.name)")
            vm.vsphereReference = summary.reference.value
            vm.update(from: summary)
            try await vm.create(on: database)
            await AuditLog.record(.operation, action: "vm.adopt", result: .success,
                                  details: "adopted \(name) (\(summary.reference.value)) into \(environment.name)",
                                  vmName: vm.hostName, vmRole: role.name, by: actor, on: database, logger: logger)
            adopted.append(vm)
        }
        return adopted
    }
}
