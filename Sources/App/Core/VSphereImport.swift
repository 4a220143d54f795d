import Fluent
import RemoteShell
import VSphere
import Vapor

/// Adopting VMs that already exist on vSphere (SPEC BEY-4).
struct VSphereImport {
    let database: any Database
    let secrets: SecretBox
    let vsphere: any VSphereProvider
    let shell: any GuestShell
    let actor: AuditLog.Actor
    let logger: Logger

    struct Input: Content {
        var connectionID: UUID
        /// Names of VMs on that connection.
        var names: [String]
        var role: String
        /// The guests' SSH password, used once to install the platform key (then never again).
        var password: String
    }

    /// Imports existing vSphere VMs into an environment. Their network comes from their
    /// cloud-init metadata, or else from the address VMware Tools report. Each guest is logged in
    /// to once with the password, to install the platform key and pin its host key to the VM;
    /// a guest where that fails is not adopted.
    private var keys: PlatformKeys { PlatformKeys(database: database, secrets: secrets) }

    func adopt(_ input: Input, into environmentID: UUID) async throws -> [VM] {
        guard let environment = try await Environment.find(environmentID, on: database) else {
            throw FlotillaError.notFound("no such environment")
        }
        guard let connection = try await VSphereConnection.find(input.connectionID, on: database) else {
            throw FlotillaError.notFound("no such connection")
        }
        guard let role = try await Role.query(on: database).filter(\.$name == input.role).first() else {
            throw FlotillaError.validation("'\(input.role.prefix(64))' is not a known role")
        }
        guard !input.names.isEmpty, input.names.count <= 1000 else { throw FlotillaError.validation("name 1 to 1000 VMs") }
        try VMs.validateGuestPassword(input.password, confirmation: input.password)
        guard Set(input.names).count == input.names.count else { throw FlotillaError.validation("a VM is named twice") }
        let endpoint = try await vsphere.endpoint(for: connection)
        // Every VM is checked and enrolled before any is saved: a request that fails for one VM
        // (a wrong password, a clash) adopts none.
        var enrolled: [(name: String, vm: VM, fingerprint: String)] = []
        for name in input.names {
            let machine: any VSphereMachine
            do {
                machine = try await endpoint.findVirtualMachine(named: name)
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
            // Checked before any subnet arithmetic: the metadata is whatever the guest's owner wrote.
            guard (8...30).contains(prefix) else {
                throw FlotillaError.validation("\(name): the prefix length /\(prefix) in its network metadata is not 8 to 30")
            }
            let gateway =
                metadata?.ipv4?.gateway ?? IPv4Address((IPv4Address(ip)?.network(prefixLength: prefix).value ?? 0) + 1).description
            let dns = metadata?.ipv4?.dns ?? []
            let spec = try VMSpec(
                hostName: metadata?.hostName ?? summary.guestHostName ?? name, ip: ip, netmask: String(prefix),
                gateway: gateway, dns1: dns.first, dns2: dns.count > 1 ? dns[1] : nil)
            if try await VM.query(on: database).group(.or, { $0.filter(\.$ip == spec.ip).filter(\.$hostName == spec.hostName) }).count() > 0
                || enrolled.contains(where: { $0.vm.ip == spec.ip || $0.vm.hostName == spec.hostName })
            {
                throw FlotillaError.conflict("\(spec.hostName) (\(spec.ip)) clashes with a VM Flotilla already has")
            }
            let key = try await keys.active()
            let hostKey: SSHHostKey
            do {
                hostKey = try await GuestEnrollment(shell: shell, keys: keys).enroll(
                    address: spec.ip, user: role.sshUser, password: input.password, key: key, hostName: spec.hostName)
            } catch let error as RemoteShellError {
                throw Self.enrollmentFailure(error, name: name, address: spec.ip)
            }
            let vm = try VM(
                environmentID: try environment.requireID(), role: role, spec: spec,
                passwordSealed: try secrets.seal(input.password), status: .ready,
                notes: "adopted from \(connection.name)")
            vm.hostKey = hostKey.openSSHPublicKey
            vm.platformKeyID = try key.requireID()
            vm.vsphereReference = summary.reference.value
            vm.update(from: summary)
            enrolled.append((name, vm, hostKey.fingerprint))
        }
        let adopted = enrolled.map(\.vm)
        try await database.transaction { transaction in
            for vm in adopted { try await vm.create(on: transaction) }
        }
        for (name, vm, fingerprint) in enrolled {
            await AuditLog.record(
                .operation, action: "vm.adopt", result: .success,
                details: "adopted \(name) (\(vm.vsphereReference ?? "")) into \(environment.name); "
                    + "platform key installed, host key \(fingerprint) pinned",
                vmName: vm.hostName, vmRole: role.name, by: actor, on: database, logger: logger)
        }
        return adopted
    }

    /// A guest that refuses the password is bad input (400); one that cannot be reached is
    /// unavailable (503): either way a message naming the VM, never a server error.
    private static func enrollmentFailure(_ error: RemoteShellError, name: String, address: String) -> FlotillaError {
        if error.kind == .authentication {
            return .validation("\(name) refused the password: the guest's SSH login at \(address) did not accept it")
        }
        return FlotillaError(.unavailable, "\(name) could not be enrolled over SSH at \(address): \(error.kind)")
    }
}

extension Request {
    var vsphereImport: VSphereImport {
        let flotilla = application.flotilla
        return VSphereImport(
            database: db, secrets: flotilla.secrets, vsphere: flotilla.vsphere, shell: flotilla.shell,
            actor: auditActor, logger: logger)
    }

    /// Adopts, then installs the monitor agent on the adopted guests (when configured): the one
    /// way both the API and the adoption page do it. Returns the VMs and the agent job, if any.
    func adoptVMs(_ input: VSphereImport.Input, into environmentID: UUID) async throws -> (vms: [VM], agentJobID: UUID?) {
        let vms = try await vsphereImport.adopt(input, into: environmentID)
        return (vms, try await agentRollout.installAdopted(vms, plan: agentInstallPlan))
    }
}

extension VSphereImport {
    /// Adopts the lab's pre-created VMs (`lab-<role>-<n>`, see `flotilla lab up --vms`) that
    /// Flotilla does not manage yet into the environment `environmentName` (made when missing),
    /// so the first page a new user sees is a live dashboard. Guests still booting are tried
    /// again every few seconds until `patience` is over; returns how many were adopted.
    func adoptLabVMs(
        on connection: VSphereConnection, into environmentName: String, password: String, patience: Duration = .seconds(180)
    ) async throws -> Int {
        let environment: Environment
        if let existing = try await Environment.query(on: database).filter(\.$name == environmentName).first() {
            environment = existing
        } else {
            environment = Environment(name: environmentName, description: "the lab's pre-created VMs, adopted at start")
            try await environment.create(on: database)
        }
        let roles = Set(try await Role.query(on: database).all().map(\.name))
        let managed = Set(try await VM.query(on: database).all().compactMap(\.vsphereReference))
        var waiting = try await vsphere.endpoint(for: connection).virtualMachines(fields: []).filter { machine in
            !machine.isTemplate && !managed.contains(machine.reference.value) && roles.contains(Self.labRole(of: machine.name) ?? "")
        }.map(\.name).sorted()
        var adopted = 0
        let deadline = ContinuousClock.now + patience
        while !waiting.isEmpty, !Task.isCancelled {
            var stillWaiting: [String] = []
            for name in waiting {
                guard let role = Self.labRole(of: name) else { continue }
                do {
                    adopted += try await adopt(
                        Input(connectionID: try connection.requireID(), names: [name], role: role, password: password),
                        into: try environment.requireID()
                    ).count
                } catch {
                    if ContinuousClock.now >= deadline {
                        logger.warning("lab: \(name) not adopted: \(FlotillaError.describe(error))")
                    } else {
                        stillWaiting.append(name)
                    }
                }
            }
            waiting = stillWaiting
            if !waiting.isEmpty { try await Task.sleep(for: .seconds(3)) }
        }
        return adopted
    }

    /// `web` of `lab-web-3`.
    static func labRole(of name: String) -> String? {
        let parts = name.split(separator: "-")
        guard parts.count == 3, parts[0] == "lab", Int(parts[2]) != nil else { return nil }
        return String(parts[1])
    }
}
