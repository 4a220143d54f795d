import Foundation
import Logging

/// Follows the hypervisor's VMs and keeps one lab guest per powered-on VM whose metadata
/// carries a network configuration: boots it, stops it, restarts it on reset, removes it when
/// the VM is destroyed, and reports its address and host name back like VMware Tools.
///
/// Guests outlive the supervisor: a new supervisor adopts the guests it finds.
public actor LabSupervisor {
    /// What the lab knows about one guest.
    private struct Guest {
        var running: Bool
        /// The VM boot time the guest last booted for; a different one means a reset.
        var bootTime: String?
        var hostName: String?
        var reportedAddress: String?
        /// When the lab last started it; a guest found dead well after that has crashed.
        var startedAt = ContinuousClock.now
    }

    public let configuration: LabConfiguration
    private let host: HostPlumbing
    private let logger: Logger
    private var inventory: VSphereLabInventory?
    private var vcsimProcess: VcsimProcess?
    private var guests: [String: Guest] = [:]
    private var refusedVMs: [String: String] = [:]
    private var passes = 0

    /// A supervisor that starts (or finds) vcsim itself, as configured.
    public init(configuration: LabConfiguration, logger: Logger = Logger(label: "flotilla.lab")) {
        self.configuration = configuration
        self.host = HostPlumbing(configuration: configuration)
        self.logger = logger
    }

    /// The vcsim this supervisor started, once `start()` has run.
    public var vcsim: VcsimProcess? { vcsimProcess }

    /// Prepares the machine (bridge), starts vcsim if configured, adopts existing guests and
    /// pre-creates VMs, then follows the inventory until the task is cancelled. Guests and a
    /// launched vcsim keep running afterwards; `Lab.down` removes them.
    public func run() async throws {
        try await start()
        await follow()
    }

    /// Reconciles every `pollInterval` until the task is cancelled; a failed pass is logged and retried.
    public func follow() async {
        while !Task.isCancelled {
            do {
                try await reconcile()
            } catch  where !Task.isCancelled {
                logger.error("lab pass failed: \(error)")
            } catch {
                return
            }
            try? await Task.sleep(for: configuration.pollInterval)
        }
    }

    /// Everything `run()` does before it starts following the inventory.
    public func start() async throws {
        _ = try? await HostCommand.run("/usr/sbin/modprobe", ["overlay"])
        let missing = Lab.missingPrerequisites(configuration)
        guard missing.isEmpty else { throw LabError.missingPrerequisite(missing.joined(separator: "; ")) }
        try FileManager.default.createDirectory(atPath: configuration.guestsDirectory, withIntermediateDirectories: true)
        try await host.bridgeUp()
        try await LabRepositories(configuration: configuration).start()
        if inventory == nil {
            inventory = try await connectInventory()
        }
        try await adoptGuests()
        if configuration.preCreatedVMs > 0, let inventory {
            try await inventory.createGuests(count: configuration.preCreatedVMs, roles: configuration.roles, network: configuration.network)
        }
    }

    /// Closes the vSphere connection the supervisor opened. Guests and vcsim keep running.
    public func close() async {
        await inventory?.close()
        inventory = nil
    }

    /// One pass: brings every guest in line with its VM.
    public func reconcile() async throws {
        guard let inventory else { return }
        let machines = try await inventory.virtualMachines()
        let present = Set(machines.map(\.key))
        var actions: [(String, Action)] = []
        for key in guests.keys where !present.contains(key) {
            actions.append((key, .remove))
        }
        for machine in machines {
            if let action = action(for: machine) {
                actions.append((machine.key, action))
            }
        }
        await withTaskGroup(of: (String, Action, Result<Void, Error>).self) { group in
            for (key, action) in actions {
                group.addTask { [host] in
                    (key, action, await outcome { try await Self.perform(action, key: key, host: host) })
                }
            }
            for await (key, action, result) in group {
                await settle(key: key, action: action, result: result, inventory: inventory)
            }
        }
        passes += 1
        // Every few passes, look at the guests themselves: a guest may change its own address
        // (ifdown; edit; ifup), which VMware Tools would report, or its init may have died.
        if passes % 4 == 0 {
            try await inspectGuests(inventory)
        }
    }

    private enum Action: Sendable {
        case create(GuestSpec, bootTime: String?)
        case boot(bootTime: String?, hostName: String)
        case reboot(bootTime: String?)
        case stop
        case remove
    }

    private func action(for machine: LabVirtualMachine) -> Action? {
        let guest = guests[machine.key]
        switch machine.guest {
        case nil:
            return nil
        case .failure(let error):
            if guest == nil, refusedVMs[machine.key] != error.description {
                refusedVMs[machine.key] = error.description
                logger.warning("\(error)")
            }
            return nil
        case .success(let spec):
            refusedVMs[machine.key] = nil
            switch (machine.powerState, guest) {
            case (.poweredOn, nil):
                return .create(spec, bootTime: machine.bootTime)
            case (.poweredOn, let guest?) where !guest.running:
                return .boot(bootTime: machine.bootTime, hostName: spec.hostName)
            case (.poweredOn, let guest?) where guest.bootTime != machine.bootTime:
                return .reboot(bootTime: machine.bootTime)
            case (.poweredOff, let guest?) where guest.running, (.suspended, let guest?) where guest.running:
                return .stop
            default:
                return nil
            }
        }
    }

    private static func perform(_ action: Action, key: String, host: HostPlumbing) async throws {
        switch action {
        case .create(let spec, let bootTime):
            try host.prepare(spec)
            try recordBootTime(bootTime, key: key, host: host)
            try await host.start(key)
        case .boot(let bootTime, _):
            try recordBootTime(bootTime, key: key, host: host)
            try await host.start(key)
        case .reboot(let bootTime):
            try await host.stop(key)
            try recordBootTime(bootTime, key: key, host: host)
            try await host.start(key)
        case .stop:
            try await host.stop(key)
        case .remove:
            try await host.remove(key)
        }
    }

    private func settle(key: String, action: Action, result: Result<Void, Error>, inventory: VSphereLabInventory) async {
        if case .failure(let error) = result {
            logger.error("guest \(key): \(action) failed: \(error)")
            return
        }
        switch action {
        case .create(let spec, let bootTime):
            guests[key] = Guest(running: true, bootTime: bootTime, hostName: spec.hostName)
            logger.info("guest \(key) created: \(spec.hostName) \(spec.address)/\(spec.prefixLength) role \(spec.role)")
            await report(key: key, address: spec.address.description, inventory: inventory)
        case .boot(let bootTime, let hostName):
            var guest = guests[key] ?? Guest(running: true)
            guest.running = true
            guest.startedAt = .now
            guest.bootTime = bootTime
            guest.hostName = guest.hostName ?? hostName
            // The next address scan reports it again, as VMware Tools does after a boot.
            guest.reportedAddress = nil
            guests[key] = guest
            logger.info("guest \(key) booted")
        case .reboot(let bootTime):
            guests[key]?.bootTime = bootTime
            guests[key]?.startedAt = .now
            logger.info("guest \(key) reset")
        case .stop:
            guests[key]?.running = false
            logger.info("guest \(key) stopped")
        case .remove:
            guests[key] = nil
            logger.info("guest \(key) removed")
        }
    }

    private func report(key: String, address: String, inventory: VSphereLabInventory) async {
        guard let hostName = guests[key]?.hostName else { return }
        do {
            try await inventory.reportGuest(key: key, ipAddress: address, hostName: hostName)
            guests[key]?.reportedAddress = address
        } catch {
            logger.warning("guest \(key): reporting \(address) failed: \(error)")
        }
    }

    private func inspectGuests(_ inventory: VSphereLabInventory) async throws {
        for status in try await host.status() {
            guard let guest = guests[status.key], guest.running else { continue }
            if !status.running {
                // Powered on but dead: the next pass boots it again, as a VM would be restarted.
                if ContinuousClock.now - guest.startedAt > .seconds(5) {
                    logger.warning("guest \(status.key) died; booting it again")
                    guests[status.key]?.running = false
                }
            } else if let address = status.address, guest.reportedAddress != address {
                await report(key: status.key, address: address, inventory: inventory)
            }
        }
    }

    /// Takes over the guests an earlier supervisor left (their namespaces and state directories).
    private func adoptGuests() async throws {
        let statuses = Dictionary(try await host.status().map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        for key in host.recordedGuests() {
            let directory = host.guestDirectory(key)
            let bootTime = try? String(contentsOfFile: directory + "/boot-time", encoding: .utf8)
            let hostName = try? String(contentsOfFile: directory + "/seed/hostname", encoding: .utf8)
            guests[key] = Guest(
                running: statuses[key]?.running ?? false,
                bootTime: bootTime.flatMap { $0.isEmpty ? nil : $0 },
                hostName: hostName?.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if !guests.isEmpty {
            logger.info("adopted \(guests.count) guests (\(guests.values.filter(\.running).count) running)")
        }
    }

    private static func recordBootTime(_ bootTime: String?, key: String, host: HostPlumbing) throws {
        let directory = host.guestDirectory(key)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data((bootTime ?? "").utf8).write(to: URL(fileURLWithPath: directory + "/boot-time"))
    }

    private func connectInventory() async throws -> VSphereLabInventory {
        switch configuration.vcsim {
        case .existing(let url, let username, let password, let thumbprint):
            return try await VSphereLabInventory.connect(
                url: url, username: username, password: password, thumbprint: thumbprint,
                labNetwork: configuration.network, demoPassword: configuration.demoPassword)
        case .launch(let launch):
            let process = try await VcsimProcess.startOrReuse(
                launch, roles: configuration.roles, stateDirectory: configuration.stateDirectory)
            vcsimProcess = process
            logger.info("vcsim at \(process.url) (pid \(process.pid))")
            return try await VSphereLabInventory.connect(
                process, labNetwork: configuration.network, demoPassword: configuration.demoPassword)
        }
    }
}

private func outcome(_ body: () async throws -> Void) async -> Result<Void, Error> {
    do {
        try await body()
        return .success(())
    } catch {
        return .failure(error)
    }
}
