import Foundation
import XCTest

@testable import VSphere

/// The library against vcsim (both models), each test on its own simulator, with pyvmomi as an
/// independent witness of every change.
final class SimulatorTests: XCTestCase {
    private let models: [Simulator.Model] = [.vCenter, .esxi]
    private var simulators: [Simulator] = []

    /// Starts a simulator that `tearDown` cleans up, whatever the test's outcome.
    private func start(
        model: Simulator.Model,
        vms: Int = 3,
        tls: Bool = true,
        extraArguments: [String] = []
    ) throws -> Simulator {
        let simulator = try Simulator(model: model, vms: vms, tls: tls, extraArguments: extraArguments)
        simulators.append(simulator)
        return simulator
    }

    override func tearDown() async throws {
        for simulator in simulators { await simulator.shutdown() }
        simulators.removeAll()
        try await super.tearDown()
    }

    // MARK: sessions and trust

    func testLoginGoodAndBad() async throws {
        for model in models {
            let simulator = try start(model: model)
            let client = try await simulator.connect()
            XCTAssertEqual(client.about.apiType, model == .vCenter ? .virtualCenter : .hostAgent)
            XCTAssertEqual(client.about.apiVersion, "6.5")
            XCTAssertNotNil(client.sessionCookie)
            try await client.close()

            do {
                _ = try await VSphereClient.connect(
                    url: simulator.url, username: Simulator.username, password: "wrong", trust: simulator.trust)
                XCTFail("\(model): a wrong password must not log in")
            } catch let error as VSphereError {
                XCTAssertEqual(error.faultName, .invalidLogin, "\(model): \(error)")
            }
        }
    }

    func testCertificateIsVerified() async throws {
        let simulator = try start(model: .vCenter)
        let wrong = String(repeating: "AB:", count: 31) + "AB"
        do {
            _ = try await VSphereClient.connect(
                url: simulator.url, username: Simulator.username, password: Simulator.password, trust: .pinnedSHA256(wrong))
            XCTFail("a wrong pin must be refused")
        } catch VSphereError.transport(let failure) {
            XCTAssertEqual(failure.kind, .certificateMismatch)
        }
        do {
            _ = try await VSphereClient.connect(
                url: simulator.url, username: Simulator.username, password: Simulator.password, trust: .system, timeout: .seconds(5))
            XCTFail("a self-signed certificate must not pass system trust")
        } catch VSphereError.transport(let failure) {
            XCTAssertEqual(failure.kind, .tls, "\(failure)")
        }
        let pinned = try await simulator.connect()
        XCTAssertEqual(pinned.about.apiType, .virtualCenter)
        try await pinned.close()

        // The pin is checked on every connection, not only when connecting: a bridge holding
        // another pin (as if the server's certificate had changed since) never gets an answer.
        let swapped = try await HTTPTransport.pinned(
            url: simulator.url, pin: Array(repeating: 0xAB, count: 32), connectTimeout: .seconds(5)
        )
        do {
            _ = try await VSphereClient.connect(
                transport: swapped, username: Simulator.username, password: Simulator.password, timeout: .seconds(5))
            XCTFail("a connection to a certificate with another thumbprint must fail")
        } catch VSphereError.transport(let failure) {
            XCTAssertEqual(failure.kind, .connectionClosed, "\(failure)")
        }
        try await swapped.shutdown()

        // A leaf issued by a CA the server never sends (as ESXi's installer CA): only the pin can trust it.
        let issued = try start(model: .esxi, extraArguments: ["-cert", "ca-issued"])
        let client = try await issued.connect()
        let vms = try await client.listVirtualMachines(fields: .overview)
        XCTAssertEqual(vms.count, 5, "every call goes through the pinned connection")
        try await client.close()
    }

    func testReloginAfterTheSessionIsDropped() async throws {
        let simulator = try start(model: .vCenter)
        let client = try await simulator.connect()
        let before = client.sessionCookie
        // Another session ends ours on the server, as an administrator or a restart would.
        let admin = try await simulator.connect()
        let session = try await client.property("currentSession", of: client.serviceContent.sessionManager)
        let key = try XCTUnwrap(session?.child("key")?.text)
        _ = try await admin.connection.invoke(
            SOAPOperation("TerminateSession", on: admin.serviceContent.sessionManager, [("sessionId", [key])]))
        // Several calls notice at once; they share one new login.
        async let first = client.listVirtualMachines()
        async let second = client.list(.datastore)
        async let third = client.list(.host)
        let (vms, datastores, hosts) = try await (first, second, third)
        XCTAssertEqual(vms.count, 5)
        XCTAssertFalse(datastores.isEmpty)
        XCTAssertFalse(hosts.isEmpty)
        XCTAssertNotEqual(client.sessionCookie, before, "a new session was opened")
        let sessions = try await admin.property("sessionList", of: admin.serviceContent.sessionManager)?.children.count
        XCTAssertEqual(sessions, 2, "the admin's and one renewed session, not one per call")

        // After an explicit logout the next call logs in again, every time.
        for _ in 0..<2 {
            try await client.logout()
            XCTAssertNil(client.sessionCookie)
            let datastores = try await client.list(.datastore)
            XCTAssertFalse(datastores.isEmpty)
            XCTAssertNotNil(client.sessionCookie)
        }
        try await admin.close()
        try await client.close()
    }

    // MARK: inventory

    func testInventory() async throws {
        for model in models {
            let simulator = try start(model: model)
            let client = try await simulator.connect()
            let datacenter = try await client.datacenter()
            XCTAssertEqual(datacenter.name, model == .vCenter ? "DC0" : "ha-datacenter")
            XCTAssertEqual(datacenter.vmFolder.type, "Folder")
            _ = try await client.find(.resourcePool, named: "Resources")
            _ = try await client.find(.datastore, named: "LocalDS_0")
            _ = try await client.find(.network, named: "VM Network")
            let hosts = try await client.list(.host)
            XCTAssertFalse(hosts.isEmpty)
            _ = try await client.find(.host, named: hosts[0].name)
            let byPath = try await client.find(.virtualMachine, named: "\(datacenter.name)/vm/tpl-web")
            let template = try await client.findTemplate(named: "tpl-web")
            XCTAssertEqual(byPath.reference, template.reference)
            do {
                _ = try await client.find(.datastore, named: "no-such-datastore")
                XCTFail("expected notFound")
            } catch VSphereError.notFound {}
            do {
                _ = try await client.findTemplate(named: try await client.listVirtualMachines().first { !$0.isTemplate }?.name ?? "")
                XCTFail("a plain VM is not a template")
            } catch VSphereError.notFound {}

            // vcsim reports guest facts that a VM's extraConfig `SET.guest.*` keys set (the lab relies on it).
            let firstVM = try await client.listVirtualMachines().first { !$0.isTemplate }
            let guestReporting = client.virtualMachine(try XCTUnwrap(firstVM).reference)
            try await guestReporting.reconfigure(extraConfig: [
                ExtraConfigEntry(key: "SET.guest.ipAddress", value: "10.9.0.7"),
                ExtraConfigEntry(key: "SET.guest.hostName", value: "reported-host"),
            ])

            let vms = try await client.listVirtualMachines()
            XCTAssertEqual(vms.count, 5, "\(model): 3 VMs and 2 templates")
            let reported = try XCTUnwrap(vms.first { $0.reference == guestReporting.reference })
            XCTAssertEqual(reported.guestIPAddress, "10.9.0.7")
            XCTAssertEqual(reported.guestHostName, "reported-host")
            let templates = vms.filter(\.isTemplate)
            XCTAssertEqual(Set(templates.map(\.name)), ["tpl-web", "tpl-mysql"])
            for template in templates {
                XCTAssertEqual(template.powerState, .poweredOff)
                XCTAssertEqual(template.cpuCount, 2)
                XCTAssertEqual(template.memoryMB, 2048)
                XCTAssertEqual(template.diskGB, 16)
                XCTAssertEqual(template.guestOS, "ubuntu64Guest", "vcsim reports the guest id as the full name")
            }
            let plain = vms.filter { !$0.isTemplate }
            XCTAssertTrue(plain.allSatisfy { $0.powerState == .poweredOn })
            XCTAssertTrue(plain.allSatisfy { $0.parentFolder == datacenter.vmFolder && $0.resourcePool != nil && $0.diskGB != nil })
            let witness = try simulator.probe(["list"])["vms"] as? [[String: Any]] ?? []
            XCTAssertEqual(Set(witness.compactMap { $0["moref"] as? String }), Set(vms.map(\.reference.value)))
            try await client.close()
        }
    }

    // MARK: lifecycle

    func testCloneFromTemplateWithGuestConfiguration() async throws {
        for model in models {
            let simulator = try start(model: model)
            let client = try await simulator.connect()
            let template = try await client.findTemplate(named: "tpl-web")
            let datacenter = try await client.datacenter()
            let guest = GuestConfiguration(
                hostName: "web-01",
                ipv4: .init(address: "10.1.0.21", prefixLength: 24, gateway: "10.1.0.1", dns: ["10.1.0.2", "10.1.0.3"]),
                passwordHash: CryptSHA512.hash(password: "pw", salt: "saltsalt")
            )
            let progress = ProgressRecorder()
            let clone = try await client.clone(
                template,
                CloneRequest(
                    name: "web-01", folder: datacenter.vmFolder, extraConfig: try guest.extraConfig(), powerOn: true, method: .cloneTask),
                progress: { progress.record($0) }
            )
            XCTAssertEqual(progress.values.last, 100)
            let summary = try await clone.summary()
            XCTAssertEqual(summary.name, "web-01")
            XCTAssertFalse(summary.isTemplate)
            XCTAssertEqual(summary.powerState, .poweredOn)
            XCTAssertEqual(try GuestConfiguration(guestInfo: summary.guestInfo), guest)

            let witness = try simulator.probe(["vm", "--name", "web-01"])
            XCTAssertEqual(witness["exists"] as? Bool, true)
            XCTAssertEqual(witness["moref"] as? String, clone.reference.value)
            XCTAssertEqual(witness["folder"] as? String, datacenter.vmFolder.value)
            XCTAssertEqual(witness["powerState"] as? String, "poweredOn")
            let extra = witness["extraConfig"] as? [String: String] ?? [:]
            XCTAssertEqual(try GuestConfiguration(guestInfo: extra), guest, "pyvmomi reads the same handoff")
            try await client.close()
        }
    }

    func testDiskCopyClonePath() async throws {
        for model in models {
            let simulator = try start(model: model)
            let client = try await simulator.connect()
            let template = try await client.findTemplate(named: "tpl-mysql")
            let guest = GuestConfiguration(hostName: "db-01")
            // ESXi: .automatic chooses the disk-copy path; on vCenter it is asked for explicitly.
            let method: CloneRequest.Method = model == .esxi ? .automatic : .createAndCopyDisks
            let clone = try await client.clone(template, CloneRequest(name: "db-01", extraConfig: try guest.extraConfig(), method: method))
            let summary = try await clone.summary()
            XCTAssertEqual(summary.name, "db-01")
            XCTAssertEqual(summary.cpuCount, 2)
            XCTAssertEqual(summary.memoryMB, 2048)
            XCTAssertEqual(summary.diskGB, 16, "\(model): the copied disk is attached")
            XCTAssertEqual(summary.powerState, .poweredOff)
            XCTAssertEqual(try GuestConfiguration(guestInfo: summary.guestInfo), guest)

            let witness = try simulator.probe(["vm", "--name", "db-01"])
            XCTAssertEqual(witness["exists"] as? Bool, true)
            XCTAssertEqual(witness["numCPU"] as? Int, 2)
            XCTAssertEqual(witness["memoryMB"] as? Int, 2048)
            XCTAssertEqual(witness["template"] as? Bool, false)

            // The copied disk is the clone's own: cloning the same name again collides on it.
            do {
                _ = try await client.clone(template, CloneRequest(name: "db-01", method: .createAndCopyDisks))
                XCTFail("\(model): a second clone into the same files must fail")
            } catch let error as VSphereError {
                XCTAssertNotNil(error.faultName, "\(error)")
            }
            try await client.close()
        }
    }

    func testExtraConfigRoundTrip() async throws {
        let simulator = try start(model: .vCenter)
        let client = try await simulator.connect()
        let vm = try await client.findVirtualMachine(named: "DC0_C0_RP0_VM0")
        let first = GuestConfiguration(
            hostName: "a", ipv4: .init(address: "10.0.0.5", prefixLength: 16, gateway: "10.0.0.1", dns: ["1.1.1.1"]))
        let second = GuestConfiguration(
            hostName: "b", ipv4: .init(address: "10.0.0.6", prefixLength: 16, gateway: "10.0.0.1", dns: ["1.1.1.1", "9.9.9.9"]),
            passwordHash: CryptSHA512.hash(password: "x"))
        try await vm.reconfigure(extraConfig: try first.extraConfig())
        try await vm.reconfigure(extraConfig: try second.extraConfig() + [ExtraConfigEntry(key: "guestinfo.flotilla.role", value: "web")])
        let entries = try await vm.extraConfig()
        XCTAssertGreaterThanOrEqual(entries.filter { $0.key == "guestinfo.metadata" }.count, 1)
        XCTAssertEqual(try GuestConfiguration(extraConfig: entries), second)
        let roleSummary = try await vm.summary()
        XCTAssertEqual(roleSummary.guestInfo["guestinfo.flotilla.role"], "web")
        let extra = try simulator.probe(["vm", "--name", "DC0_C0_RP0_VM0"])["extraConfig"] as? [String: String] ?? [:]
        XCTAssertEqual(try GuestConfiguration(guestInfo: extra), second)
        XCTAssertEqual(extra["guestinfo.flotilla.role"], "web")
        try await client.close()
    }

    func testPowerOperationsAndTheirFaults() async throws {
        for model in models {
            let simulator = try start(model: model)
            let client = try await simulator.connect()
            guard let name = try await client.listVirtualMachines().first(where: { !$0.isTemplate })?.name else {
                return XCTFail("no VM")
            }
            let vm = try await client.findVirtualMachine(named: name)
            func witness() throws -> String? { try simulator.probe(["vm", "--name", name])["powerState"] as? String }

            let state = try await vm.powerState()
            XCTAssertEqual(state, .poweredOn)
            try await assertFault(.invalidPowerState) { try await vm.powerOn() }
            try await vm.suspend()
            XCTAssertEqual(try witness(), "suspended")
            try await vm.powerOn()
            XCTAssertEqual(try witness(), "poweredOn")
            try await vm.reset()
            XCTAssertEqual(try witness(), "poweredOn")
            let reboot = try await vm.rebootGuest()
            XCTAssertNotEqual(reboot, .guest, "vcsim has no RebootGuest: the hard reset is used")
            XCTAssertEqual(try witness(), "poweredOn")
            try await vm.powerOff()
            XCTAssertEqual(try witness(), "poweredOff")
            try await assertFault(.invalidPowerState) { try await vm.powerOff() }
            try await vm.powerOn()
            let hardShutdown = try await vm.shutdownGuest(guestTimeout: .seconds(5))
            XCTAssertEqual(hardShutdown, .hardFallback(reason: "VMware Tools not running"))
            XCTAssertEqual(try witness(), "poweredOff")

            // With tools reported running, the guest operations are used (vcsim lacks RebootGuest).
            try await vm.reconfigure(extraConfig: [ExtraConfigEntry(key: "SET.guest.toolsRunningStatus", value: "guestToolsRunning")])
            try await vm.powerOn()
            guard case .hardFallback(let reason) = try await vm.rebootGuest() else { return XCTFail("vcsim has no RebootGuest") }
            XCTAssertTrue(reason.contains("MethodNotFound"), reason)
            XCTAssertEqual(try witness(), "poweredOn")
            let guestShutdown = try await vm.shutdownGuest(guestTimeout: .seconds(5))
            XCTAssertEqual(guestShutdown, .guest)
            XCTAssertEqual(try witness(), "poweredOff")
            try await client.close()
        }
    }

    func testDestroy() async throws {
        for model in models {
            let simulator = try start(model: model)
            let client = try await simulator.connect()
            guard let name = try await client.listVirtualMachines().first(where: { !$0.isTemplate })?.name else {
                return XCTFail("no VM")
            }
            let vm = try await client.findVirtualMachine(named: name)
            try await assertFault(.invalidPowerState) { try await vm.destroy() }
            try await vm.powerOff()
            try await vm.destroy()
            XCTAssertEqual(try simulator.probe(["vm", "--name", name])["exists"] as? Bool, false)
            try await assertFault(.managedObjectNotFound) { try await vm.destroy() }
            do {
                _ = try await client.findVirtualMachine(named: name)
                XCTFail("destroyed VMs are gone")
            } catch VSphereError.notFound {}
            try await client.close()
        }
    }

    func testTemplateMarking() async throws {
        let simulator = try start(model: .vCenter)
        let client = try await simulator.connect()
        let vm = try await client.findVirtualMachine(named: "DC0_C0_RP0_VM1")
        let poolSummary = try await vm.summary()
        let pool = try XCTUnwrap(poolSummary.resourcePool)
        try await vm.powerOff()
        try await vm.markAsTemplate()
        XCTAssertEqual(try simulator.probe(["vm", "--name", "DC0_C0_RP0_VM1"])["template"] as? Bool, true)
        try await assertFault(.invalidState) { try await vm.powerOn() }
        try await vm.markAsVirtualMachine(pool: pool)
        XCTAssertEqual(try simulator.probe(["vm", "--name", "DC0_C0_RP0_VM1"])["template"] as? Bool, false)
        try await vm.powerOn()
        try await client.close()
    }

    func testInjectedFaultSurfacesTyped() async throws {
        for model in models {
            let simulator = try start(
                model: model, extraArguments: ["-fail-prefix", "doomed-", "-fail-fault", "InsufficientResourcesFault"])
            let client = try await simulator.connect()
            let template = try await client.findTemplate(named: "tpl-web")
            for method in [CloneRequest.Method.cloneTask, .createAndCopyDisks] {
                do {
                    _ = try await client.clone(template, CloneRequest(name: "doomed-1", method: method))
                    XCTFail("\(model) \(method): the injected fault must surface")
                } catch let error as VSphereError {
                    XCTAssertEqual(error.faultName, .insufficientResources, "\(model) \(method): \(error)")
                }
                XCTAssertEqual(try simulator.probe(["vm", "--name", "doomed-1"])["exists"] as? Bool, false)
            }
            try await client.close()
        }
    }

    // MARK: failures of the connection

    func testSimulatorKilledMidCallFailsCleanly() async throws {
        let simulator = try start(model: .vCenter, extraArguments: ["-method-delay", "PowerOffVM_Task=30000"])
        let client = try await simulator.connect(timeout: .seconds(20))
        let vm = try await client.findVirtualMachine(named: "DC0_C0_RP0_VM0")
        let clock = ContinuousClock()
        let start = clock.now
        async let call: Void = vm.powerOff()
        try await Task.sleep(for: .milliseconds(500))
        simulator.kill()
        do {
            try await call
            XCTFail("the call cannot succeed")
        } catch VSphereError.transport(let failure) {
            XCTAssertEqual(failure.kind, .connectionClosed, "\(failure)")
        }
        XCTAssertLessThan(clock.now - start, .seconds(5), "no hang until the 20 s timeout")
    }

    func testRequestTimeout() async throws {
        let simulator = try start(model: .vCenter, extraArguments: ["-method-delay", "PowerOffVM_Task=10000"])
        let client = try await simulator.connect(timeout: .seconds(1))
        let vm = try await client.findVirtualMachine(named: "DC0_C0_RP0_VM0")
        let clock = ContinuousClock()
        let start = clock.now
        do {
            try await vm.powerOff()
            XCTFail("the call must time out")
        } catch VSphereError.transport(let failure) {
            XCTAssertEqual(failure.kind, .timedOut, "\(failure)")
        }
        XCTAssertLessThan(clock.now - start, .seconds(3))
    }

    func testConnectionRefused() async throws {
        let simulator = try start(model: .vCenter, tls: false)
        let url = simulator.url
        simulator.kill()
        let clock = ContinuousClock()
        let start = clock.now
        do {
            _ = try await VSphereClient.connect(url: url, username: "u", password: "p", timeout: .seconds(2))
            XCTFail("nothing listens there any more")
        } catch VSphereError.transport(let failure) {
            XCTAssertTrue([.connectionRefused, .timedOut].contains(failure.kind), "\(failure)")
        }
        XCTAssertLessThan(clock.now - start, .seconds(4))
    }

    // MARK: performance and changes

    func testPerformanceQuery() async throws {
        for model in models {
            let simulator = try start(model: model, vms: 4)
            let client = try await simulator.connect()
            let counters = try await client.performanceCounters()
            XCTAssertNotNil(counters["cpu.usage.average"])
            XCTAssertEqual(counters["cpu.usage.average"]?.unit, "percent")
            let vms = try await client.listVirtualMachines().filter { !$0.isTemplate }.map(\.reference)
            let result = try await client.queryPerformance(
                for: vms, counters: ["cpu.usage.average", "mem.usage.average"], maxSamples: 15, batchSize: 3)
            XCTAssertEqual(Set(result.keys), Set(vms))
            for (_, series) in result {
                let cpu = try XCTUnwrap(series["cpu.usage.average"])
                XCTAssertFalse(cpu.samples.isEmpty)
                XCTAssertLessThanOrEqual(cpu.samples.count, 15)
                XCTAssertEqual(cpu.samples.map(\.timestamp), cpu.samples.map(\.timestamp).sorted())
                XCTAssertTrue(cpu.samples.allSatisfy { (0...100).contains($0.value) }, "percent, not hundredths")
                XCTAssertNotNil(series["mem.usage.average"])
            }
            let since = Date().addingTimeInterval(-60)
            let recent = try await client.queryPerformance(for: [vms[0]], counters: ["cpu.usage.average"], since: since)
            let recentSamples = try XCTUnwrap(recent[vms[0]]?["cpu.usage.average"]?.samples)
            XCTAssertFalse(recentSamples.isEmpty)
            XCTAssertLessThanOrEqual(recentSamples.count, 4, "one 20 s sample per interval in the last minute")
            XCTAssertTrue(recentSamples.allSatisfy { $0.timestamp >= since.addingTimeInterval(-1) })
            do {
                _ = try await client.queryPerformance(for: vms, counters: ["no.such.counter"])
                XCTFail("unknown counter")
            } catch VSphereError.notFound {}
            try await client.close()
        }
    }

    func testChangeFeed() async throws {
        let simulator = try start(model: .vCenter)
        let client = try await simulator.connect()
        let watch = try await client.watch(types: ["VirtualMachine"], paths: ["name", "runtime.powerState"])
        let initial = try await watch.next(maxWaitSeconds: 1)
        XCTAssertEqual(initial.count, 5)
        XCTAssertTrue(initial.allSatisfy { $0.kind == .enter })
        let vm = try await client.findVirtualMachine(named: "DC0_C0_RP0_VM2")
        try await vm.powerOff()
        let changes = try await watch.next(maxWaitSeconds: 5)
        let change = try XCTUnwrap(changes.first { $0.object == vm.reference })
        XCTAssertEqual(change.kind, .modify)
        XCTAssertEqual(change.changes.first { $0.path == "runtime.powerState" }?.value?.text, "poweredOff")
        try await watch.close()
        try await client.close()
    }

    // MARK: helpers

    private func assertFault(
        _ name: FaultName, file: StaticString = #filePath, line: UInt = #line, _ body: () async throws -> Void
    ) async throws {
        do {
            try await body()
            XCTFail("expected \(name)", file: file, line: line)
        } catch let error as VSphereError {
            XCTAssertEqual(error.faultName, name, "\(error)", file: file, line: line)
        }
    }
}

final class ProgressRecorder: Sendable {
    private let storage = Locked<[Int]>([])
    func record(_ value: Int) { storage.withLockedValue { $0.append(value) } }
    var values: [Int] { storage.withLockedValue { $0 } }
}
