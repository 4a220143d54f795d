import Fluent
import VSphere
import Vapor

/// Follows vSphere (SPEC BEY-4): every pass reads each connection's VMs once and brings the
/// records in line — power state, guest OS — and marks a VM that disappeared outside Flotilla
/// as missing (never silently dropped), or ready again when it reappears.
struct InventorySync {
    let database: any Database
    let vsphere: any VSphereProvider
    let logger: Logger

    /// One pass over every connection; a connection that cannot be reached is skipped and logged.
    func pass() async throws {
        for connection in try await VSphereConnection.query(on: database).all() {
            let connectionID = try connection.requireID()
            let machines: [VMSummary]
            do {
                machines = try await vsphere.endpoint(for: connection).virtualMachines(fields: .overview)
            } catch {
                logger.warning("inventory sync: cannot read \(connection.name): \(FlotillaError.describe(error))")
                continue
            }
            let present = Dictionary(machines.map { ($0.reference.value, $0) }, uniquingKeysWith: { first, _ in first })
            let roleIDs = try await Role.query(on: database).filter(\.$connection.$id == connectionID).all().map { try $0.requireID() }
            guard !roleIDs.isEmpty else { continue }
            let vms = try await VM.query(on: database).filter(\.$role.$id ~~ roleIDs)
                .filter(\.$status ~~ [.ready, .missing]).filter(\.$vsphereReference != nil).with(\.$role).all()
            for vm in vms {
                // The pass stops when this instance loses the lead (see `PeriodicTasks`).
                try Task.checkCancellation()
                guard let reference = vm.vsphereReference else { continue }
                if let machine = present[reference] {
                    let wasMissing = vm.status == .missing
                    vm.powerState = machine.powerState.rawValue
                    vm.guestOS = machine.guestOS ?? vm.guestOS
                    vm.status = .ready
                    vm.statusReason = nil
                    if vm.hasChanges { try await vm.save(on: database) }
                    if wasMissing { await record(vm, "vm.found", .success, "\(vm.hostName) is on vSphere again") }
                } else if vm.status != .missing {
                    vm.status = .missing
                    vm.statusReason = "gone from vSphere (\(reference)); it was removed outside Flotilla"
                    vm.powerState = nil
                    try await vm.save(on: database)
                    await record(vm, "vm.missing", .failure, vm.statusReason ?? "")
                }
            }
        }
    }

    private func record(_ vm: VM, _ action: String, _ result: LogResult, _ details: String) async {
        await AuditLog.record(
            result == .success ? .operation : .error, action: action, result: result, details: details,
            vmName: vm.hostName, vmRole: vm.$role.value?.name, by: .system, on: database, logger: logger)
    }

    /// The periodic task's name, the key of its leader lease: never renamed.
    static let taskName = "inventory-sync"

    /// Makes the sync one of the periodic tasks (led by one instance at a time), unless
    /// `FLOTILLA_SYNC_SECONDS` is 0.
    static func register(on app: Application) throws {
        let seconds = app.flotilla.config.inventorySyncSeconds
        guard seconds > 0 else { return }
        let vsphere = app.flotilla.vsphere
        try app.periodic.register(name: taskName, interval: .seconds(seconds)) { context in
            try await InventorySync(database: context.database, vsphere: vsphere, logger: context.logger).pass()
        }
    }
}
