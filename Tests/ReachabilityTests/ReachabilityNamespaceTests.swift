import Foundation
import Reachability
import XCTest

/// Sweeps of addresses in a network namespace made for the test (see `TestNetwork`): answering
/// ones, silent ones, ones that start or stop answering. Needs root; run under the lab lock
/// (`flock /tmp/flotilla-lab.lock swift test --skip-build --filter ReachabilityTests`).
final class ReachabilityNamespaceTests: XCTestCase {
    private var network: TestNetwork!

    override func setUp() async throws {
        try requireRoot()
        network = try TestNetwork.create()
    }

    override func tearDown() async throws {
        if network != nil {
            TestNetwork.remove()
            network = nil
        }
    }

    func testDownAfterThreeMissesUpAtTheFirstAnswer() async throws {
        let sweeper = try ReachabilitySweeper(settings: SweepSettings(timeout: .milliseconds(200)), preference: .only(.icmpRaw))
        await sweeper.setTargets([try target("10.78.1.1"), try target("10.78.1.100")])
        let changes = await sweeper.changes()
        var iterator = changes.makeAsyncIterator()

        let first = await sweeper.sweep()
        XCTAssertEqual(first.answered, 1)
        XCTAssertGreaterThanOrEqual(first.duration, .milliseconds(200), "a silent address makes the sweep wait the timeout")
        XCTAssertLessThan(first.duration, .milliseconds(300), "a sweep takes the timeout, not more")
        let answering = try await status(sweeper, "10.78.1.1")
        XCTAssertEqual(answering.state, .up)
        XCTAssertLessThan(try XCTUnwrap(answering.roundTripTime), .milliseconds(50))
        var change = try await nextChange(&iterator)
        XCTAssertEqual([change.status.address, change.previous.rawValue, change.status.state.rawValue], ["10.78.1.1", "unknown", "up"])

        // Silent: unknown for two sweeps, down at the third.
        var silent = try await status(sweeper, "10.78.1.100")
        XCTAssertEqual(silent.state, .unknown)
        XCTAssertEqual(silent.consecutiveMisses, 1)
        await sweeper.sweep()
        silent = try await status(sweeper, "10.78.1.100")
        XCTAssertEqual(silent.state, .unknown)
        XCTAssertEqual(silent.consecutiveMisses, 2)
        await sweeper.sweep()
        silent = try await status(sweeper, "10.78.1.100")
        XCTAssertEqual(silent.state, .down)
        XCTAssertEqual(silent.consecutiveMisses, 3)
        XCTAssertNil(silent.roundTripTime)
        change = try await nextChange(&iterator)
        XCTAssertEqual(
            [change.status.address, change.previous.rawValue, change.status.state.rawValue], ["10.78.1.100", "unknown", "down"])

        // The address appears: up at the first answer.
        try network.addAddress("10.78.1.100")
        await sweeper.sweep()
        silent = try await status(sweeper, "10.78.1.100")
        XCTAssertEqual(silent.state, .up)
        XCTAssertEqual(silent.consecutiveMisses, 0)
        change = try await nextChange(&iterator)
        XCTAssertEqual([change.status.address, change.previous.rawValue, change.status.state.rawValue], ["10.78.1.100", "down", "up"])

        // An answering address goes away: still up after two misses, down at the third.
        try network.removeAddress("10.78.1.1")
        for misses in 1...2 {
            await sweeper.sweep()
            let observed = try await status(sweeper, "10.78.1.1")
            XCTAssertEqual(observed.state, .up, "after \(misses) misses")
            XCTAssertEqual(observed.consecutiveMisses, misses)
        }
        let last = await sweeper.sweep()
        XCTAssertEqual(last.changes, 1)
        change = try await nextChange(&iterator)
        XCTAssertEqual([change.status.address, change.previous.rawValue, change.status.state.rawValue], ["10.78.1.1", "up", "down"])
    }

    func testTheWaitAdaptsToMeasuredRoundTripsBetweenFloorAndCeiling() async throws {
        let sweeper = try ReachabilitySweeper(
            settings: SweepSettings(timeout: .milliseconds(400), minimumTimeout: .milliseconds(50)), preference: .only(.icmpRaw))
        await sweeper.setTargets([try target("10.78.1.1"), try target("10.78.1.100")])
        let first = await sweeper.sweep()
        XCTAssertEqual(first.longestTimeout, .milliseconds(400), "nothing known yet: every target waits the ceiling")
        XCTAssertGreaterThanOrEqual(first.duration, .milliseconds(400))
        // Sub-millisecond answers: the silent address waits the floor, not the ceiling.
        for _ in 0..<3 {
            let summary = await sweeper.sweep()
            XCTAssertEqual(summary.answered, 1)
            XCTAssertEqual(summary.longestTimeout, .milliseconds(50))
            XCTAssertGreaterThanOrEqual(summary.duration, .milliseconds(50))
            XCTAssertLessThan(summary.duration, .milliseconds(150), "the wait follows the floor")
        }
        let silent = try await status(sweeper, "10.78.1.100")
        XCTAssertEqual(silent.state, .down, "three misses at the floor are still three misses")
        XCTAssertEqual(silent.timeout, .milliseconds(50))

        // A floor equal to the ceiling is a fixed timeout.
        try await sweeper.update(SweepSettings(timeout: .milliseconds(200), minimumTimeout: .milliseconds(200)))
        let fixed = await sweeper.sweep()
        XCTAssertEqual(fixed.longestTimeout, .milliseconds(200))
        XCTAssertGreaterThanOrEqual(fixed.duration, .milliseconds(200))
    }

    func testAnAnswerAfterTheWaitLengthensThatTargetsWaitAndKeepsItUp() async throws {
        let sweeper = try ReachabilitySweeper(
            settings: SweepSettings(timeout: .milliseconds(900), minimumTimeout: .milliseconds(50)), preference: .only(.icmpRaw))
        await sweeper.setTargets([try target("10.78.1.1"), try target("127.0.0.1")])
        for _ in 0..<3 { await sweeper.sweep() }
        let fast = try await status(sweeper, "10.78.1.1")
        XCTAssertEqual(fast.timeout, .milliseconds(50), "sub-millisecond answers wait the floor")

        // The link slows down to 150 ms: missed at the floor, answered late, waited for longer.
        let responder = try DelayedEchoResponder(network: network, delay: .milliseconds(150))
        defer { responder.stop() }
        var late = 0
        var answeredInTime = false
        for _ in 0..<6 where !answeredInTime {
            let summary = await sweeper.sweep()
            late += summary.lateAnswers
            let slow = try await status(sweeper, "10.78.1.1")
            XCTAssertNotEqual(slow.state, .down, "a target that answers, however late, is not down")
            answeredInTime = slow.roundTripTime != nil
            try await Task.sleep(for: .milliseconds(200))  // as the server's sweeps are spaced
        }
        XCTAssertTrue(answeredInTime, "the backed-off wait must reach the 150 ms round trip")
        XCTAssertGreaterThan(late, 0)
        let slow = try await status(sweeper, "10.78.1.1")
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(slow.roundTripTime), .milliseconds(150))
        // Its own estimate now covers the slow round trip; the loopback target still waits the floor.
        let next = await sweeper.sweep()
        XCTAssertEqual(next.answered, 2)
        let adapted = try await status(sweeper, "10.78.1.1")
        XCTAssertGreaterThan(try XCTUnwrap(adapted.timeout), .milliseconds(150))
        let loopback = try await status(sweeper, "127.0.0.1")
        XCTAssertLessThan(try XCTUnwrap(loopback.timeout), .milliseconds(150))
    }

    func testRetriesAreSpreadWithinTheTimeout() async throws {
        let sweeper = try ReachabilitySweeper(
            settings: SweepSettings(timeout: .milliseconds(300), retries: 2), preference: .only(.icmpRaw))
        await sweeper.setTargets(try ["10.78.1.2", "10.78.1.101", "10.78.1.102"].map { try target($0) })
        let summary = await sweeper.sweep()
        XCTAssertEqual(summary.answered, 1)
        XCTAssertGreaterThanOrEqual(summary.duration, .milliseconds(300))
        XCTAssertLessThan(summary.duration, .milliseconds(400), "retries must not lengthen a sweep beyond its timeout")
    }

    func testTCPConnectWithoutICMPAndAsSecondOpinion() async throws {
        let listener = try LoopbackListener()
        // No ICMP: a handshake (loopback listener) and a refusal (the namespace's closed port 9) are
        // answers; silence (an address dropped in the namespace) is a miss.
        let tcpOnly = try ReachabilitySweeper(settings: SweepSettings(timeout: .milliseconds(200)), preference: .only(.tcp))
        XCTAssertEqual(tcpOnly.method, .tcp)
        await tcpOnly.setTargets([
            try target("127.0.0.1", port: listener.port), try target(TestNetwork.namespaceAddress, port: 9),
            try target("10.78.1.100", port: 22),
        ])
        let summary = await tcpOnly.sweep()
        XCTAssertEqual(summary.answered, 2)
        XCTAssertLessThan(summary.duration, .milliseconds(300))
        for address in ["127.0.0.1", TestNetwork.namespaceAddress] {
            let answered = try await status(tcpOnly, address)
            XCTAssertEqual(answered.state, .up, address)
            XCTAssertEqual(answered.answeredBy, .tcp)
            XCTAssertLessThan(try XCTUnwrap(answered.roundTripTime), .milliseconds(50))
        }
        let silentMisses = await tcpOnly.status(of: "10.78.1.100")?.consecutiveMisses
        XCTAssertEqual(silentMisses, 1)

        // The namespace stops answering ICMP: its closed port still answers the second opinion.
        try network.setKernelParameter("net/ipv4/icmp_echo_ignore_all", "1")
        let targets = [try target("10.78.1.3", port: 9), try target("10.78.1.4")]
        let withSecondOpinion = try ReachabilitySweeper(settings: SweepSettings(timeout: .milliseconds(200)), preference: .only(.icmpRaw))
        await withSecondOpinion.setTargets(targets)
        let checked = await withSecondOpinion.sweep()
        XCTAssertEqual(checked.answered, 1, "only the target with a port gets a second opinion")
        let byTCP = await withSecondOpinion.status(of: "10.78.1.3")
        XCTAssertEqual(byTCP?.state, .up)
        XCTAssertEqual(byTCP?.answeredBy, .tcp)

        var settings = SweepSettings(timeout: .milliseconds(200))
        settings.tcpSecondOpinion = false
        let icmpOnly = try ReachabilitySweeper(settings: settings, preference: .only(.icmpRaw))
        await icmpOnly.setTargets(targets)
        let unchecked = await icmpOnly.sweep()
        XCTAssertEqual(unchecked.answered, 0)
    }

    func testUnprivilegedICMPSocketWhereTheSystemAllowsIt() async throws {
        // The machine keeps ping_group_range closed; the test's namespace opens it for every group.
        try network.setKernelParameter("net/ipv4/ping_group_range", "0 2147483647")
        let sweeper = try network.makeSweeperInside(settings: SweepSettings(timeout: .milliseconds(200)), preference: .automatic)
        XCTAssertEqual(sweeper.method, .icmpDatagram, "automatic should prefer the unprivileged socket where it is allowed")
        // From inside: its own addresses and the machine answer; an unused neighbour does not.
        await sweeper.setTargets(try ["10.78.1.1", TestNetwork.hostAddress, "10.78.0.77"].map { try target($0) })
        let summary = await sweeper.sweep()
        XCTAssertEqual(summary.answered, 2)
        let states = await sweeper.allStatuses().map(\.state)
        XCTAssertEqual(states, [.up, .up, .unknown])
        let answeredBy = await sweeper.status(of: TestNetwork.hostAddress)?.answeredBy
        XCTAssertEqual(answeredBy, .icmpDatagram)
    }

    /// The soak is 10 minutes at 1 Hz (scripts/bench-sweep --soak 10); this is its short
    /// form: 30 sweeps back to back over answering and silent addresses, with TCP second opinions.
    func testSoakKeepsDescriptorsAndMemoryFlat() async throws {
        let sweeper = try ReachabilitySweeper(settings: SweepSettings(timeout: .milliseconds(100)), preference: .only(.icmpRaw))
        var targets = try (1...200).map { try target("127.0.\($0 / 100).\($0 % 100 + 1)") }
        targets += try (100...199).map { try target("10.78.1.\($0)", port: 22) }
        await sweeper.setTargets(targets)
        let changes = await sweeper.changes()
        let consumer = Task {
            var count = 0
            for await _ in changes { count += 1 }
            return count
        }
        for _ in 0..<3 {
            await sweeper.sweep()
        }
        let descriptorsBefore = openDescriptorCount()
        let residentBefore = residentKiB()
        var slowest = Duration.zero
        for _ in 0..<30 {
            let summary = await sweeper.sweep()
            XCTAssertEqual(summary.answered, 200)
            slowest = max(slowest, summary.duration)
        }
        let descriptorsAfter = openDescriptorCount()
        let residentAfter = residentKiB()
        print(
            "soak: 30 sweeps of 300 targets, fds \(descriptorsBefore) -> \(descriptorsAfter), RSS \(residentBefore) -> \(residentAfter) KiB, slowest \(slowest)"
        )
        XCTAssertLessThanOrEqual(descriptorsAfter, descriptorsBefore, "open descriptors grew")
        XCTAssertLessThan(residentAfter - residentBefore, 2048, "resident memory grew by more than 2 MiB")
        XCTAssertLessThan(slowest, .milliseconds(400), "ICMP timeout plus TCP timeout, and little else")
        let statuses = await sweeper.allStatuses()
        XCTAssertEqual(statuses.filter { $0.state == .down }.count, 100)
        XCTAssertEqual(statuses.filter { $0.state == .up }.count, 200)
        consumer.cancel()
        let delivered = await consumer.value
        XCTAssertEqual(delivered, 300, "each target changed state once: 200 up, 100 down")
    }
}
