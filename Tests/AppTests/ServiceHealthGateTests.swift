import Fluent
import Foundation
import XCTest

@testable import App

/// The health gate after a configuration change (issue 13 §4): the monitor agent's state when
/// the VM's agent reports on the restarted services, else the profile's check on the guest.
final class ServiceHealthGateTests: XCTestCase {
    /// Counts the profile's check and answers with `verdict`.
    private actor ProfileCheck {
        var calls = 0
        let verdict: String?
        init(_ verdict: String?) { self.verdict = verdict }
        func run() -> String? {
            calls += 1
            return verdict
        }
    }

    private func gate(
        _ world: InMemoryWorld, vm: UUID, services: [String], check: ProfileCheck, timeout: Duration = .seconds(5)
    )
        -> ServiceHealthGate
    {
        ServiceHealthGate(
            database: world.app.db, vmID: vm, services: services, profileCheck: { await check.run() }, timeout: timeout,
            pollInterval: .milliseconds(50))
    }

    /// Stores a heartbeat of the VM's agent, received at `at`, with the services' states.
    private func heartbeat(
        _ world: InMemoryWorld, vm: UUID, at date: Date, _ states: [String: String], silent: Bool = false
    )
        async throws
    {
        let status = try await AgentStatus.query(on: world.app.db).filter(\.$vmID == vm).first() ?? AgentStatus()
        status.vmID = vm
        status.lastHeartbeatAt = date
        status.agentVersion = "1"
        status.queuedEvents = 0
        status.silentSince = silent ? date : nil
        status.servicesJSON = String(
            decoding: try JSONEncoder().encode(
                states.map { AgentReport.ServiceState(name: $0.key, state: $0.value, restarts: 0, failures: 0, attempts: 0, since: 0) }),
            as: UTF8.self)
        try await status.save(on: world.app.db)
    }

    func testAReportingAgentDecidesFromTwoHeartbeatsAfterTheRestart() async throws {
        try await InMemoryWorld.run { world in
            let vm = try await world.addReadyVM("web-1", "10.77.5.10").id
            let restartedAt = Date()
            // Before the restart the agent saw the service running: that says nothing yet.
            try await heartbeat(world, vm: vm, at: restartedAt.addingTimeInterval(-1), ["app-web": "running"])
            let check = ProfileCheck("service app-web is not running")
            let gate = gate(world, vm: vm, services: ["app-web"], check: check)
            let source = try await gate.source()
            XCTAssertEqual(source, .agent)
            let waiting = Task { await gate.wait(restartedAt: restartedAt) }
            try await Task.sleep(for: .milliseconds(300))
            try await heartbeat(world, vm: vm, at: Date(), ["app-web": "running", "sshd": "running"])
            try await Task.sleep(for: .milliseconds(300))
            try await heartbeat(world, vm: vm, at: Date(), ["app-web": "running", "sshd": "running"])
            let failure = await waiting.value
            XCTAssertNil(failure)
            let calls = await check.calls
            XCTAssertEqual(calls, 0, "the profile's check does not run while the agent reports")
        }
    }

    func testAnAgentReportingTheServiceDownFailsTheGateEvenIfItsPortAnswers() async throws {
        try await InMemoryWorld.run { world in
            let vm = try await world.addReadyVM("web-1", "10.77.5.10").id
            let restartedAt = Date()
            try await heartbeat(world, vm: vm, at: restartedAt.addingTimeInterval(0.5), ["app-web": "down"])
            let check = ProfileCheck(nil)
            let failure = await gate(world, vm: vm, services: ["app-web"], check: check, timeout: .milliseconds(600)).wait(
                restartedAt: restartedAt)
            XCTAssertEqual(failure, "not healthy within 0.6 seconds: the monitor agent reports app-web down")
            let calls = await check.calls
            XCTAssertEqual(calls, 0)
        }
    }

    func testWithoutAReportingAgentWatchingTheServiceTheProfilesCheckDecides() async throws {
        try await InMemoryWorld.run { world in
            let vm = try await world.addReadyVM("web-1", "10.77.5.10").id
            // No agent at all: the profile's check, two healthy polls.
            let healthy = ProfileCheck(nil)
            let noAgent = gate(world, vm: vm, services: ["app-web"], check: healthy)
            let noAgentSource = try await noAgent.source()
            XCTAssertEqual(noAgentSource, .profileCheck)
            let passed = await noAgent.wait(restartedAt: Date())
            XCTAssertNil(passed)
            let healthyCalls = await healthy.calls
            XCTAssertEqual(healthyCalls, 2)

            // An agent that does not watch the restarted service, or has gone silent: the profile's check.
            for silent in [false, true] {
                try await heartbeat(
                    world, vm: vm, at: Date().addingTimeInterval(5), silent ? ["app-web": "running"] : ["sshd": "running"], silent: silent)
                let unhealthy = ProfileCheck("port 8000 does not answer")
                let gate = gate(world, vm: vm, services: ["app-web"], check: unhealthy, timeout: .milliseconds(300))
                let source = try await gate.source()
                XCTAssertEqual(source, .profileCheck, "silent: \(silent)")
                let failure = await gate.wait(restartedAt: Date())
                XCTAssertEqual(failure, "not healthy within 0.3 seconds: port 8000 does not answer")
            }
        }
    }
}
