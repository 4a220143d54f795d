import Fluent
import XCTVapor

@testable import App

/// The cluster's rules inside one process (SPEC BEY-8): leader leases, periodic tasks led by
/// one instance, the instances list and the health check. `Tests/ClusterTests` runs the same
/// with real processes behind nginx.
final class ClusterRulesTests: XCTestCase {
    func testLeaseGoesToOneHolderUntilReleasedOrExpired() async throws {
        try await TestApp.run(["FLOTILLA_SYNC_SECONDS": "0"]) { app in
            let first = UUID()
            let second = UUID()
            let taken = try await LeaderLease.takeOrRenew("test-task", holder: first, on: app.db)
            XCTAssertTrue(taken)
            let refused = try await LeaderLease.takeOrRenew("test-task", holder: second, on: app.db)
            XCTAssertFalse(refused, "a lease that has not expired went to a second holder")
            let renewed = try await LeaderLease.takeOrRenew("test-task", holder: first, on: app.db)
            XCTAssertTrue(renewed)
            let other = try await LeaderLease.takeOrRenew("other-task", holder: second, on: app.db)
            XCTAssertTrue(other, "leases of different tasks are independent")

            // The holder dies: its lease runs out and the next one takes it.
            try await LeaderLease.query(on: app.db).filter(\.$id == "test-task")
                .set(\.$expiresAt, to: Date().addingTimeInterval(-1)).update()
            let takenOver = try await LeaderLease.takeOrRenew("test-task", holder: second, on: app.db)
            XCTAssertTrue(takenOver)
            let found = try await LeaderLease.find("test-task", on: app.db)
            let lease = try XCTUnwrap(found)
            XCTAssertEqual(lease.holder, second)
            XCTAssertGreaterThan(lease.expiresAt, Date().addingTimeInterval(Double(LeaderLease.durationSeconds) - 5))

            // An orderly stop hands the lease over at once.
            try await LeaderLease.releaseAll(heldBy: second, on: app.db)
            let afterRelease = try await LeaderLease.takeOrRenew("test-task", holder: first, on: app.db)
            XCTAssertTrue(afterRelease)
        }
    }

    func testPeriodicTaskRunsOnOneInstanceAndMovesWhenItStops() async throws {
        try await TestApp.run(["FLOTILLA_SYNC_SECONDS": "0"]) { app in
            let passes = PassCounter()
            let instances = [app.instance, InstanceIdentity(address: "second:8080")]
            let runners = try instances.map { identity in
                let tasks = PeriodicTasks()
                try tasks.register(name: "counting", interval: .milliseconds(100)) { context in
                    await passes.record(context.instance.id)
                }
                XCTAssertThrowsError(try tasks.register(name: "counting", interval: .seconds(1)) { _ in })
                tasks.start(PeriodicTasks.Context(database: app.db, logger: app.logger, instance: identity))
                return tasks
            }
            try await Task.sleep(for: .seconds(1))
            let leaders = await passes.instances
            XCTAssertEqual(leaders.count, 1, "both instances ran the task")
            let leader = try XCTUnwrap(leaders.first)
            let leaderIndex = try XCTUnwrap(instances.firstIndex { $0.id == leader })

            await runners[leaderIndex].stop()
            let before = await passes.count(of: leader)
            // The other instance tries every renewal interval; the released lease is free at once.
            try await Task.sleep(for: LeaderLease.renewInterval + .seconds(1))
            let after = await passes.instances
            XCTAssertEqual(after.count, 2, "nobody took over the task")
            let stoppedPasses = await passes.count(of: leader)
            XCTAssertEqual(stoppedPasses, before, "the stopped instance kept running the task")
            await runners[1 - leaderIndex].stop()
        }
    }

    func testHealthAnswersAnyoneWithTheInstanceOnly() async throws {
        try await TestApp.run(["FLOTILLA_SYNC_SECONDS": "0"]) { app in
            let anonymous = try TestClient(app)
            let answer = try await anonymous.request(.GET, "/api/v1/health")
            XCTAssertEqual(answer.status, .ok)
            let health = try anonymous.decode(InstancesAPI.Health.self, answer)
            XCTAssertEqual(health.status, "ok")
            XCTAssertEqual(health.instance, app.instance.id)
            // Nothing but these two: anyone may ask.
            let fields = try JSONDecoder().decode([String: String].self, from: Data(buffer: answer.body))
            XCTAssertEqual(Set(fields.keys), ["status", "instance"])
        }
    }

    func testInstancesListShowsThisInstanceToSystemAdministratorsOnly() async throws {
        try await TestApp.run(["FLOTILLA_SYNC_SECONDS": "0", "FLOTILLA_ADVERTISE_ADDRESS": "flotilla-a.example:8443"]) { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            // A dead instance: it stopped beating long ago and never said goodbye.
            let dead = InstanceRecord(
                identity: InstanceIdentity(startedAt: Date().addingTimeInterval(-600), address: "gone:8080"),
                now: Date().addingTimeInterval(-300))
            try await dead.create(on: app.db)

            let answer = try await admin.request(.GET, "/api/v1/instances")
            XCTAssertEqual(answer.status, .ok, answer.body.string)
            let instances = try admin.decode([InstanceSummary].self, answer)
            XCTAssertEqual(instances.map(\.address), ["flotilla-a.example:8443", "gone:8080"])
            XCTAssertEqual(instances.map(\.state), [.running, .silent])
            XCTAssertEqual(instances.map(\.answering), [true, false])
            XCTAssertEqual(instances.first?.id, app.instance.id)
            XCTAssertEqual(instances.first?.version, InstanceIdentity.softwareVersion)

            let page = try await admin.request(.GET, "/settings/instances")
            XCTAssertEqual(page.status, .ok)
            XCTAssertTrue(page.body.string.contains("flotilla-a.example:8443"))

            try await createUser(admin, "olga", role: .ordinary)
            let ordinary = try TestClient(app)
            try await ordinary.signIn("olga", "password-123")
            let refused = try await ordinary.request(.GET, "/api/v1/instances")
            XCTAssertEqual(refused.status, .forbidden)
        }
    }
}

/// Which instance ran a periodic pass, how often.
private actor PassCounter {
    private var passes: [UUID: Int] = [:]

    func record(_ instance: UUID) { passes[instance, default: 0] += 1 }
    var instances: Set<UUID> { Set(passes.keys) }
    func count(of instance: UUID) -> Int { passes[instance] ?? 0 }
}
