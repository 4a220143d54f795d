import Fluent
import VSphere
import XCTVapor

@testable import App

/// The environment page's live expander: power states from vSphere, services from the guests.
final class LiveStatusTests: XCTestCase {
    func testLiveStatusReportsPowerAndServices() async throws {
        try await InMemoryWorld.run { world in
            let web = try await world.addReadyVM("web-01", "10.77.5.20")
            let redis = try await world.addReadyVM("redis-01", "10.77.5.21", role: "redis")
            await world.shell.update("10.77.5.21") { $0.running = ["sshd"] }
            let live = try world.admin.decode(
                [LiveStatus.LiveVM].self,
                try await world.admin.request(.GET, "/api/v1/environments/\(world.environmentID)/live"))
            let byID = Dictionary(uniqueKeysWithValues: live.map { ($0.id, $0) })
            XCTAssertEqual(byID[web.id]?.powerState, "poweredOn")
            XCTAssertEqual(byID[web.id]?.services, [.init(name: "sshd", running: true), .init(name: "web", running: true)])
            XCTAssertEqual(byID[redis.id]?.services, [.init(name: "sshd", running: true), .init(name: "redis", running: false)])
        }
    }

    /// One SSH login per VM, but never to the whole environment at once.
    func testLiveStatusProbesABoundedNumberOfGuestsAtOnce() async throws {
        try await InMemoryWorld.run { world in
            for number in 1...40 {
                try await world.addReadyVM("web-\(number)", "10.77.5.\(100 + number)")
            }
            await world.shell.setCommandDuration(.milliseconds(50))
            let live = try world.admin.decode(
                [LiveStatus.LiveVM].self,
                try await world.admin.request(.GET, "/api/v1/environments/\(world.environmentID)/live"))
            XCTAssertEqual(live.count, 40)
            XCTAssertTrue(live.allSatisfy { $0.services?.count == 2 })
            let most = await world.shell.mostConcurrent
            XCTAssertLessThanOrEqual(most, LiveStatus.guestsAtOnce)
            XCTAssertGreaterThan(most, 1, "guests are still probed in parallel")
        }
    }
}
