import Fluent
import VSphere
import Vapor

/// Blueprints against what exists (SPEC BEY-2): check one, deploy one as an environment and a
/// job that makes its VMs in parallel, and export an environment as a blueprint.
struct Deployments {
    let database: any Database
    let secrets: SecretBox
    let jobs: JobEngine
    let operations: VMOperations
    let actor: AuditLog.Actor
    let logger: Logger
    /// The monitor agent's install after the VMs are made (SPEC MON-1), when a platform URL is set.
    var agentInstall = AgentInstallPlan.none

    struct Input: Content {
        var blueprint: String
        /// For `password: shared`.
        var password: String?
        var passwordConfirmation: String?
    }

    struct Deployment: Content {
        var environmentID: UUID
        var jobID: UUID
        var vms: Int
    }

    /// Checks a blueprint against what exists: known roles, free names and addresses.
    func check(_ blueprint: Blueprint) async throws -> [Blueprint.PlannedVM] {
        let planned = try blueprint.plan()
        let known = Set(try await Role.query(on: database).all().map(\.name))
        if let unknown = blueprint.roles.keys.sorted().first(where: { !known.contains($0) }) {
            throw FlotillaError.validation("'\(unknown)' is not a known role (known: \(known.sorted().joined(separator: ", ")))")
        }
        if try await Environment.query(on: database).filter(\.$name == blueprint.name).count() > 0 {
            throw FlotillaError.conflict("an environment named '\(blueprint.name)' already exists")
        }
        let addresses = planned.map(\.spec.ip)
        let names = planned.map(\.spec.hostName)
        if let taken = try await VM.query(on: database).group(.or, { $0.filter(\.$ip ~~ addresses).filter(\.$hostName ~~ names) }).first() {
            throw FlotillaError.conflict("\(taken.hostName) (\(taken.ip)) already uses a name or address of the blueprint")
        }
        return planned
    }

    /// Creates the environment and its VM records, then one job that makes all VMs in parallel.
    func deploy(_ input: Input) async throws -> Deployment {
        let blueprint = try Blueprint.parse(input.blueprint)
        let planned = try await check(blueprint)
        let policy = blueprint.password ?? .shared
        if policy == .shared {
            try VMs.validateGuestPassword(input.password ?? "", confirmation: input.passwordConfirmation ?? "")
        }
        let roles = Dictionary(uniqueKeysWithValues: try await Role.query(on: database).all().map { ($0.name, $0) })
        let secrets = secrets
        let (environment, vms) = try await database.transaction { transaction in
            let environment = Environment(name: blueprint.name, description: blueprint.description ?? "")
            try await environment.create(on: transaction)
            var vms: [VM] = []
            for item in planned {
                guard let role = roles[item.role] else { throw FlotillaError.validation("'\(item.role)' is not a known role") }
                let password = policy == .shared ? (input.password ?? "") : UserAdministration.generatePassword()
                let vm = try VM(
                    environmentID: try environment.requireID(), role: role, spec: item.spec,
                    passwordSealed: try secrets.seal(password), status: .provisioning,
                    notes: "from blueprint \(blueprint.name)")
                try await vm.create(on: transaction)
                vms.append(vm)
            }
            return (environment, vms)
        }
        await AuditLog.record(
            .operation, action: "environment.deploy", result: .success,
            details: "deploying blueprint '\(blueprint.name)': \(vms.count) VMs", by: actor, on: database, logger: logger)
        let jobID = try await jobs.submit(
            kind: "environment.deploy", title: "Deploy \(blueprint.name) (\(vms.count) VMs)",
            by: actor, steps: try vms.map(operations.createStep) + agentInstall.steps(for: vms, reboot: true, phase: 1))
        return Deployment(environmentID: try environment.requireID(), jobID: jobID, vms: vms.count)
    }

    /// A blueprint shaped like an existing environment, under a new name and address range.
    func blueprint(of environmentID: UUID, name: String? = nil, range: String? = nil) async throws -> Blueprint {
        guard let environment = try await Environment.find(environmentID, on: database) else {
            throw FlotillaError.notFound("no such environment")
        }
        // Addresses in numeric order (as text, 10.0.0.10 would come before 10.0.0.9).
        let vms = try await environment.$vms.query(on: database).with(\.$role).all()
            .sorted { (IPv4Address($0.ip)?.value ?? 0) < (IPv4Address($1.ip)?.value ?? 0) }
        guard let sample = vms.first else { throw FlotillaError.conflict("\(environment.name) has no VMs to copy") }
        var counts: [String: Int] = [:]
        for vm in vms { counts[vm.role.name, default: 0] += 1 }
        let netmask = IPv4Address.netmask(prefixLength: sample.prefixLength).description
        return Blueprint(
            name: name ?? environment.name, description: environment.description, roles: counts,
            network: .init(
                range: range ?? "\(vms.first?.ip ?? "")-\(vms.last?.ip ?? "")", netmask: netmask, gateway: sample.gateway,
                dns: [sample.dns1, sample.dns2].compactMap { $0 }),
            names: Blueprint.defaultNamePattern, password: .shared)
    }
}

extension Request {
    var deployments: Deployments {
        let flotilla = application.flotilla
        return Deployments(
            database: db, secrets: flotilla.secrets, jobs: flotilla.jobs, operations: flotilla.vmOperations,
            actor: auditActor, logger: logger, agentInstall: agentInstallPlan)
    }
}
