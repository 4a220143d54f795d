import Foundation
import XCTest

@testable import App

/// How one origin's checker answer and the dependency VM's processes become a result (SPEC
/// CFG-2): the rules behind "which kind of check ran" and "which layer failed". The lab test
/// (`DependencyCheckLabTests`) runs the same code against real servers.
final class DependencyCheckRulesTests: XCTestCase {
    private func probe(_ kind: ServiceProfile.Check.Kind) throws -> DependencyChecks.Probe {
        let vm = VM()
        vm.id = UUID()
        vm.hostName = "db-1"
        vm.ip = "10.77.1.5"
        let check = ServiceProfile.Check(kind: kind, port: kind == .tcp ? 8000 : nil)
        return DependencyChecks.Probe(
            id: "0", role: kind.rawValue, vm: vm, vmKey: "db", check: check, port: try XCTUnwrap(check.effectivePort), password: nil,
            processNames: DependencyChecks.processNames(for: check))
    }

    private func answer(connected: Bool, passed: Bool, layer: String?) -> DependencyChecks.OriginOutcome {
        .answered(["0": .init(id: "0", connected: connected, passed: passed, layer: layer, message: "seen", milliseconds: 3)])
    }

    func testAStandInGetsAProcessAndPortCheckThatSaysSo() throws {
        let processes = DependencyChecks.processState("up stand-in mongod\n")
        let result = DependencyChecks.result(
            of: try probe(.mongo), from: .platform, outcome: answer(connected: true, passed: false, layer: "protocol"), processes: processes
        )
        XCTAssertTrue(result.passed)
        XCTAssertEqual(result.method, .processAndPort)
        XCTAssertTrue(result.methodDescription.contains("stand-in"), result.methodDescription)
    }

    func testARealServerMustSpeakItsProtocol() throws {
        let processes = DependencyChecks.processState("up real mysqld\ndown real mariadbd\n")
        let result = DependencyChecks.result(
            of: try probe(.mysql), from: .platform, outcome: answer(connected: true, passed: false, layer: "authentication"),
            processes: processes)
        XCTAssertFalse(result.passed)
        XCTAssertEqual(result.method, .protocol)
        XCTAssertEqual(result.layer, .authentication)
    }

    func testARefusedPortIsServiceNotRunningOnlyWhenTheProcessIsGone() throws {
        let refused = answer(connected: false, passed: false, layer: "port_closed")
        let gone = DependencyChecks.result(
            of: try probe(.redis), from: .platform, outcome: refused, processes: DependencyChecks.processState("down real redis-server\n"))
        XCTAssertEqual(gone.layer, .serviceNotRunning)
        XCTAssertTrue(gone.message.contains("redis-server is not running on db-1"), gone.message)
        let running = DependencyChecks.result(
            of: try probe(.redis), from: .platform, outcome: refused, processes: DependencyChecks.processState("up real redis-server\n"))
        XCTAssertEqual(running.layer, .portClosed)
        // A VM that could not be looked at (no SSH): the origin's own finding stands.
        let unknown = DependencyChecks.result(of: try probe(.redis), from: .platform, outcome: refused, processes: nil)
        XCTAssertEqual(unknown.layer, .portClosed)
        let lost = DependencyChecks.result(
            of: try probe(.redis), from: .platform, outcome: answer(connected: false, passed: false, layer: "no_route"),
            processes: DependencyChecks.processState("down real redis-server\n"))
        XCTAssertEqual(lost.layer, .noRoute, "an address that does not answer says nothing about the process")
    }

    func testAnOriginWhereTheCheckerCouldNotRunFailsEveryCheckThere() throws {
        let target = VM()
        target.id = UUID()
        target.hostName = "web-1"
        let result = DependencyChecks.result(
            of: try probe(.redis), from: .target(target), outcome: .unavailable("cannot run the check on web-1: no route"), processes: nil)
        XCTAssertFalse(result.passed)
        XCTAssertEqual(result.layer, .originUnavailable)
        XCTAssertEqual(result.origin, "web-1")
        XCTAssertEqual(result.originVMID, target.id)
    }

    func testATCPCheckIsAPortCheck() throws {
        let result = DependencyChecks.result(
            of: try probe(.tcp), from: .platform, outcome: answer(connected: true, passed: true, layer: nil), processes: nil)
        XCTAssertTrue(result.passed)
        XCTAssertEqual(result.method, .port)
    }
}
