import Fluent
import Foundation
import Lab
import VSphere
import XCTVapor

@testable import App

/// The dashboard against the lab (root, vcsim, guest namespaces; run under the lab lock): the
/// pre-created VMs adopted as `scripts/run --vms` does, a power change outside Flotilla seen
/// through WaitForUpdatesEx within 2 s, power on back to up through the sweeper's ICMP, and a
/// guest whose link goes down with power on reported as network unreachable.
final class DashboardLabTests: XCTestCase {
    static let lab = LabConfiguration(
        stateDirectory: "/var/lib/flotilla-lab-dashtest", roles: ["web"], preCreatedVMs: 2, pollInterval: .milliseconds(250))

    func testPowerAndLinkChangesReachTheDashboard() async throws {
        try await Self.lab.withApp { app, vcsim in try await exercise(app, vcsim: vcsim) }
    }

    private func exercise(_ app: Application, vcsim: VcsimProcess) async throws {
        let admin = try TestClient(app)
        try await admin.signIn("admin", TestApp.adminPassword)
        let adopted = try await admin.adoptLab(Self.lab, vcsim: vcsim, roles: ["web"], patience: .seconds(60))
        XCTAssertEqual(adopted, 2)
        let adoptedVM = try await VM.query(on: app.db).filter(\.$hostName == "lab-web-1").first()
        let vm = try XCTUnwrap(adoptedVM)
        let vmID = try vm.requireID()
        let reference = try XCTUnwrap(vm.vsphereReference)
        let fleet = app.fleetStatus
        try await waitFor("lab-web-1 is up", timeout: .seconds(20)) { await fleet.entry(vmID)?.health == .up }

        let client = try await VSphereClient.connect(
            url: try XCTUnwrap(URL(string: vcsim.url)), username: vcsim.username, password: vcsim.password,
            trust: .pinnedSHA256(try XCTUnwrap(vcsim.thumbprint)))
        let machine = client.virtualMachine(ManagedObjectReference(type: "VirtualMachine", value: reference))
        let powerOff = ContinuousClock.now
        try await machine.powerOff()
        try await waitFor("powered off shows", timeout: .seconds(2)) { await fleet.entry(vmID)?.health == .poweredOff }
        print("dashboard lab: power off → poweredOff in \(ContinuousClock.now - powerOff)")
        // The guest is gone: after the down threshold the probe says so too, so "up" below needs a real answer.
        try await waitFor("the probe notices", timeout: .seconds(10)) { await fleet.entry(vmID)?.probe?.state == .down }
        let whileOff = await fleet.entry(vmID)
        XCTAssertEqual(whileOff?.health, .poweredOff)

        let powerOn = ContinuousClock.now
        try await machine.powerOn()
        try await waitFor("up again after power on", timeout: .seconds(60)) { await fleet.entry(vmID)?.health == .up }
        print("dashboard lab: power on → up (the namespace answers pings while powered off) in \(ContinuousClock.now - powerOn)")

        // The namespace outlives a power-off and answers pings at once: wait until the guest has booted
        // (sshd answers), or its network start would bring the link up again.
        try await waitFor("sshd in the guest", timeout: .seconds(60)) {
            (try? run("/usr/bin/bash", ["-c", "exec 3<>/dev/tcp/\(vm.ip)/22"], check: false)) == 0
        }
        try await Task.sleep(for: .seconds(1))
        let linkDown = ContinuousClock.now
        try run("/usr/sbin/ip", ["netns", "exec", "flt-\(reference)", "ip", "link", "set", "eth0", "down"])
        try await waitFor("network unreachable", timeout: .seconds(10)) { await fleet.entry(vmID)?.health == .networkUnreachable }
        print("dashboard lab: link down → networkUnreachable in \(ContinuousClock.now - linkDown)")
        let entry = await fleet.entry(vmID)
        XCTAssertEqual(entry?.powerState, "poweredOn")
        try? await client.close()

        // The history keeps each change; the page shows the latest.
        let history = try admin.decode(
            ListResponse<API.ReachabilityChangeBody>.self, try await admin.request(.GET, "/api/v1/vms/\(vmID)/reachability"))
        XCTAssertEqual(history.items.first?.health, "networkUnreachable")
        XCTAssertTrue(history.items.map(\.health).contains("poweredOff"), "\(history.items.map(\.health))")
        let page = try await admin.request(.GET, "/vms/\(vmID)")
        XCTAssertTrue(page.body.string.contains("network unreachable"))
    }

    @discardableResult
    private func run(_ program: String, _ arguments: [String], check: Bool = true) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        if check { XCTAssertEqual(process.terminationStatus, 0, "\(program) \(arguments.joined(separator: " "))") }
        return process.terminationStatus
    }

    private func waitFor(_ what: String, timeout: Duration, _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("not within \(timeout): \(what)")
    }
}
