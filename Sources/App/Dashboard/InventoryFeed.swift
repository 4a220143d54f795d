import Fluent
import VSphere
import Vapor

/// What vSphere reports about one machine, as far as the dashboard and drift need it.
struct ObservedMachine: Sendable, Equatable {
    var name: String?
    var powerState: String?
    var toolsRunningStatus: String?
    var heartbeat: String?
    var ipAddress: String?
    var cpus: Int?
    var memoryMB: Int?
    var diskGB: Double?

    var guest: GuestActivity {
        GuestActivity(toolsRunningStatus: toolsRunningStatus, heartbeat: heartbeat, ipAddress: ipAddress)
    }

    /// Takes one property of a WaitForUpdatesEx answer; tells whether it bears on drift.
    mutating func take(_ change: PropertyChange) -> Bool {
        let text = change.operation == .remove ? nil : change.value?.text
        switch change.path {
        case "name": name = text
        case "runtime.powerState": powerState = text
        case "guest.toolsRunningStatus": toolsRunningStatus = text
        case "guestHeartbeatStatus": heartbeat = text
        case "guest.ipAddress": ipAddress = text
        case "config.hardware.numCPU": cpus = text.flatMap { Int($0) }
        case "config.hardware.memoryMB": memoryMB = text.flatMap { Int($0) }
        case "config.hardware.device": diskGB = change.value.map(VMSummary.diskCapacityGB)
        default: return false
        }
        return ["name", "guest.ipAddress", "config.hardware.numCPU", "config.hardware.memoryMB", "config.hardware.device"]
            .contains(change.path)
    }

    /// The parts drift compares.
    var configuration: ObservedMachine {
        ObservedMachine(name: name, ipAddress: ipAddress, cpus: cpus, memoryMB: memoryMB, diskGB: diskGB)
    }
}

/// Follows one vSphere connection's VMs as they change, with WaitForUpdatesEx on a property
/// collector of its own: a power change reaches the dashboard within a second or two, without
/// polling vCenter. Endpoints without the library's client (the in-memory one of the rule
/// tests) are read every `pollInterval` instead.
struct InventoryFeed {
    let connectionID: UUID
    let database: any Database
    let vsphere: any VSphereProvider
    let fleet: FleetStatus
    let logger: Logger
    /// Keeps the health changes the feed causes (history, log, shared with other instances).
    let record: @Sendable ([FleetStatus.Change]) async -> Void

    /// The properties followed: power, guest activity, and what drift compares.
    static let paths = [
        "name", "runtime.powerState", "guest.toolsRunningStatus", "guestHeartbeatStatus", "guest.ipAddress",
        "config.hardware.numCPU", "config.hardware.memoryMB", "config.hardware.device",
    ]
    /// How long one WaitForUpdatesEx may wait for a change; bounds how long shutdown waits.
    static let maxWaitSeconds = 5
    static let pollInterval: Duration = .seconds(2)
    static let retryDelay: Duration = .seconds(5)

    /// Follows until cancelled; an unreachable vCenter is retried every `retryDelay`.
    func run() async {
        while !Task.isCancelled {
            do {
                try await follow()
            } catch {
                if Task.isCancelled { return }
                logger.warning("inventory feed: \(FlotillaError.describe(error)); retrying in 5 s")
            }
            try? await Task.sleep(for: Self.retryDelay)
        }
    }

    private func follow() async throws {
        guard let connection = try await VSphereConnection.find(connectionID, on: database) else { return }
        let endpoint = try await vsphere.endpoint(for: connection)
        var machines: [String: ObservedMachine] = [:]
        guard let live = endpoint as? LiveVSphereEndpoint else {
            while !Task.isCancelled {
                var drifted: [String: ObservedMachine] = [:]
                for summary in try await endpoint.virtualMachines(fields: [.guest, .hardware, .disks]) where !summary.isTemplate {
                    let observed = ObservedMachine(
                        name: summary.name, powerState: summary.powerState.rawValue, ipAddress: summary.guestIPAddress,
                        cpus: summary.cpuCount, memoryMB: summary.memoryMB, diskGB: summary.diskGB)
                    let reference = summary.reference.value
                    guard machines[reference] != observed else { continue }
                    if machines[reference]?.configuration != observed.configuration { drifted[reference] = observed }
                    machines[reference] = observed
                    await absorb(reference, observed)
                }
                try await DriftCheck(connectionID: connectionID, database: database, logger: logger).compare(drifted)
                try await Task.sleep(for: Self.pollInterval)
            }
            return
        }
        let watch = try await live.client.watch(paths: Self.paths)
        do {
            while !Task.isCancelled {
                var drifted: [String: ObservedMachine] = [:]
                for update in try await watch.next(maxWaitSeconds: Self.maxWaitSeconds) {
                    let reference = update.object.value
                    if update.kind == .leave {
                        machines[reference] = nil
                        continue
                    }
                    var observed = machines[reference] ?? ObservedMachine()
                    var bearsOnDrift = false
                    for change in update.changes where observed.take(change) { bearsOnDrift = true }
                    machines[reference] = observed
                    if bearsOnDrift { drifted[reference] = observed }
                    await absorb(reference, observed)
                }
                try await DriftCheck(connectionID: connectionID, database: database, logger: logger).compare(drifted)
            }
        } catch {
            try? await watch.close()
            throw error
        }
        try? await watch.close()
    }

    private func absorb(_ reference: String, _ observed: ObservedMachine) async {
        let changes = await fleet.applyMachine(
            connectionID: connectionID, reference: reference, powerState: observed.powerState, guest: observed.guest)
        await record(changes)
    }
}

/// Compares Flotilla's records with what vSphere reports (SPEC BEY-4): CPUs, memory and disk
/// changed outside Flotilla are taken into the record; a changed name or address is reported
/// (the record keeps what Flotilla configured). Each difference is kept once as drift and
/// written to the audit log.
struct DriftCheck {
    let connectionID: UUID
    let database: any Database
    let logger: Logger

    func compare(_ observed: [String: ObservedMachine]) async throws {
        guard !observed.isEmpty else { return }
        let roleIDs = try await Role.query(on: database).filter(\.$connection.$id == connectionID).all().map { try $0.requireID() }
        guard !roleIDs.isEmpty else { return }
        let references = Array(observed.keys)
        for start in stride(from: 0, to: references.count, by: 500) {
            let chunk = Array(references[start..<min(start + 500, references.count)])
            let vms = try await VM.query(on: database).filter(\.$role.$id ~~ roleIDs).filter(\.$vsphereReference ~~ chunk)
                .filter(\.$status == .ready).with(\.$role).all()
            for vm in vms {
                guard let reference = vm.vsphereReference, let machine = observed[reference] else { continue }
                try await compare(vm, machine)
            }
        }
    }

    private func compare(_ vm: VM, _ machine: ObservedMachine) async throws {
        var found: [(field: String, recorded: String, observed: String)] = []
        if let cpus = machine.cpus {
            if let recorded = vm.cpus, recorded != cpus { found.append(("cpus", String(recorded), String(cpus))) }
            vm.cpus = cpus
        }
        if let memory = machine.memoryMB {
            if let recorded = vm.memoryMB, recorded != memory { found.append(("memoryMB", String(recorded), String(memory))) }
            vm.memoryMB = memory
        }
        if let disk = machine.diskGB {
            if let recorded = vm.diskGB, abs(recorded - disk) >= 0.01 {
                found.append(("diskGB", String(format: "%.2f", recorded), String(format: "%.2f", disk)))
            }
            vm.diskGB = disk
        }
        if vm.hasChanges { try await vm.save(on: database) }
        let vmID = try vm.requireID()
        // Name and address stay as Flotilla configured them: report each new value once.
        for (field, recorded, observed) in [("name", vm.hostName, machine.name), ("address", vm.ip, machine.ipAddress)] {
            guard let observed, !observed.isEmpty, observed != recorded else { continue }
            let last = try await VMDrift.query(on: database).filter(\.$vm.$id == vmID).filter(\.$field == field)
                .sort(\.$at, .descending).first()
            if last?.observed != observed { found.append((field, recorded, observed)) }
        }
        let now = Date()
        for drift in found {
            try await VMDrift(vmID: vmID, field: drift.field, recorded: drift.recorded, observed: drift.observed, at: now)
                .create(on: database)
            let details = "\(drift.field) changed outside Flotilla: \(drift.recorded) → \(drift.observed)"
            logger.notice("drift on \(vm.hostName): \(details)")
            await AuditLog.record(
                .operation, action: "vm.drift", result: .success, details: details, vmName: vm.hostName, vmRole: vm.role.name,
                by: .system, on: database, logger: logger)
        }
    }
}
