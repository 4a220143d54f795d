import Foundation
import Reachability
import XCTest

/// Settings, targets and sweeps over loopback (no namespace needed).
final class ReachabilitySweeperTests: XCTestCase {
    func testSettingsOutOfRangeAreRefused() async throws {
        XCTAssertNoThrow(try SweepSettings().validate())
        let refused: [(String, SweepSettings)] = [
            ("interval below 1 s", SweepSettings(interval: .milliseconds(500), timeout: .milliseconds(100))),
            ("interval above 60 s", SweepSettings(interval: .seconds(61))),
            ("timeout not below the interval", SweepSettings(interval: .seconds(1), timeout: .seconds(1))),
            ("floor above the ceiling", SweepSettings(timeout: .milliseconds(100), minimumTimeout: .milliseconds(200))),
            ("floor below 1 ms", SweepSettings(minimumTimeout: .zero)),
            ("retries", SweepSettings(retries: 11)),
            ("down threshold", SweepSettings(downAfterMisses: 0)),
            ("packet rate", SweepSettings(maxPacketsPerSecond: 10)),
            ("connects", SweepSettings(maxConnectsInFlight: 0)),
        ]
        for (name, settings) in refused {
            XCTAssertThrowsError(try ReachabilitySweeper(settings: settings), name) { error in
                guard case ReachabilityError.invalidSetting = error else { return XCTFail("\(name): \(error)") }
            }
        }
        let sweeper = try ReachabilitySweeper(preference: .only(.tcp))
        let before = await sweeper.currentSettings()
        do {
            try await sweeper.update(SweepSettings(interval: .seconds(120)))
            XCTFail("an interval of 120 s was accepted")
        } catch ReachabilityError.invalidSetting {}
        let after = await sweeper.currentSettings()
        XCTAssertEqual(after, before, "a refused update changed the settings")
    }

    func testTargetsAreDottedQuadIPv4Addresses() {
        XCTAssertEqual(ReachabilityTarget(address: "10.77.1.10", port: 22)?.description, "10.77.1.10:22")
        for bad in ["10.77.1.256", "10.77.1", " 10.77.1.10", "10.77.1.10 ", "::1", "host.example", ""] {
            XCTAssertNil(ReachabilityTarget(address: bad), bad)
        }
    }

    func testLoopbackAnswersInTheFirstSweepWithPlausibleRoundTrips() async throws {
        try requireRoot()
        let sweeper = try ReachabilitySweeper()
        XCTAssertEqual(sweeper.method, .icmpRaw, "as root with ping_group_range closed, automatic should choose the raw socket")
        let addresses = ["127.0.0.1", "127.0.0.2", "127.0.3.4"]
        await sweeper.setTargets(try addresses.map { try target($0) })
        let changes = await sweeper.changes()
        var iterator = changes.makeAsyncIterator()

        let summary = await sweeper.sweep()
        XCTAssertEqual(summary.answered, 3)
        XCTAssertEqual(summary.changes, 3)
        XCTAssertLessThan(summary.duration, .milliseconds(100), "every address answered: the sweep must not wait for the timeout")
        for status in await sweeper.allStatuses() {
            XCTAssertEqual(status.state, .up, status.address)
            XCTAssertEqual(status.answeredBy, .icmpRaw)
            XCTAssertEqual(status.consecutiveMisses, 0)
            let roundTrip = try XCTUnwrap(status.roundTripTime)
            XCTAssertGreaterThan(roundTrip, .zero)
            XCTAssertLessThan(roundTrip, .milliseconds(50), "loopback round trip of \(status.address)")
            XCTAssertNotNil(status.since)
        }
        var changed: [String] = []
        for _ in addresses {
            let change = try await nextChange(&iterator)
            XCTAssertEqual(change.previous, .unknown)
            XCTAssertEqual(change.status.state, .up)
            changed.append(change.status.address)
        }
        XCTAssertEqual(changed, addresses)

        // A second sweep with nothing changed publishes nothing.
        let second = await sweeper.sweep()
        XCTAssertEqual(second.changes, 0)
    }

    func testRunSweepsEveryIntervalUntilCancelled() async throws {
        try requireRoot()
        let sweeper = try ReachabilitySweeper(settings: SweepSettings(interval: .seconds(1), timeout: .milliseconds(100)))
        await sweeper.setTargets([try target("127.0.0.1")])
        let started = ContinuousClock.now
        let running = Task { await sweeper.run() }
        try await Task.sleep(for: .milliseconds(2_300))
        running.cancel()
        await running.value
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(2_800), "run() must end promptly when cancelled")
        let sweeps = await sweeper.lastSweep?.round
        XCTAssertEqual(sweeps, 3, "sweeps at 0, 1 and 2 s")
    }

    func testChangeStreamEndsWhenTheSweeperGoes() async throws {
        var sweeper: ReachabilitySweeper? = try ReachabilitySweeper(preference: .only(.tcp))
        let changes = await sweeper!.changes()
        let consumer = Task {
            var count = 0
            for await _ in changes { count += 1 }
            return count
        }
        sweeper = nil
        let delivered = await consumer.value
        XCTAssertEqual(delivered, 0)
    }
}
