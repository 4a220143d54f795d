import Foundation
import XCTest

/// The reachability sweep on two real instances on one PostgreSQL (issue 10, SPEC BEY-8): one
/// instance leads it (lease `reachability-sweep`), the other shows the leader's verdicts; when
/// the leader is killed the other leads within 30 s, and the killed one, started again, follows.
/// The VMs' addresses are loopback ones (answered by this machine); their power state is changed
/// in the records, which only the leader turns into a verdict (no sync, no vSphere VM behind them).
final class ClusterDashboardTests: XCTestCase {
    static let task = "reachability-sweep"

    func testSweepLeaderKilledAnotherLeadsWithin30SecondsAndFollowersShowTheLeadersVerdicts() async throws {
        let vcsim = try Vcsim()
        defer { vcsim.stop() }
        let cluster = try Cluster(instances: 2, settings: ["FLOTILLA_REACHABILITY_SECONDS": "1", "FLOTILLA_SYNC_SECONDS": "0"])
        do {
            try await sweepLeaderFailover(cluster, vcsim: vcsim)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    private func sweepLeaderFailover(_ cluster: Cluster, vcsim: Vcsim) async throws {
        try await cluster.signIn()
        let environment = try await cluster.addEnvironment(vcsim: vcsim)
        try cluster.insertVMs(
            values: (1...3).map { "('dash-\($0)', '127.0.77.\($0)', NULL)" }.joined(separator: ", "), environment: environment,
            powerState: "poweredOn")

        let leader = try await waitForValue("one instance leads the sweep", timeout: 30) { try await self.sweepLeaders(cluster).first }
        let leaders = try await sweepLeaders(cluster)
        XCTAssertEqual(leaders.count, 1, "instances leading the sweep: \(leaders)")
        let leaderNumber = try XCTUnwrap(cluster.number(of: leader))
        let follower = cluster.instance(3 - leaderNumber)

        // The follower does not probe: "up" there is the leader's verdict.
        try await waitForHealth(cluster, on: follower, ["dash-1": "up", "dash-2": "up", "dash-3": "up"])
        _ = try cluster.sql("UPDATE vms SET power_state = 'poweredOff' WHERE host_name = 'dash-3'")
        try await waitForHealth(cluster, on: follower, ["dash-1": "up", "dash-3": "poweredOff"])

        try cluster.kill(leaderNumber)
        let killed = Date()
        let successor = try await waitForValue("the other instance leads the sweep", timeout: ClusterTests.takeoverLimit + 10) {
            // The killed instance is listed as running until its heartbeat is overdue.
            try await self.sweepLeaders(cluster, through: follower).first { $0 != leader }
        }
        let takeover = Date().timeIntervalSince(killed)
        print("cluster: sweep leader \(leader) SIGKILLed; \(successor) leads after \(String(format: "%.1f", takeover)) s")
        XCTAssertEqual(cluster.number(of: successor), 3 - leaderNumber)
        XCTAssertLessThanOrEqual(takeover, ClusterTests.takeoverLimit)

        // The new leader sweeps: a VM powered on again is up by its own probe.
        _ = try cluster.sql("UPDATE vms SET power_state = 'poweredOn' WHERE host_name = 'dash-3'")
        try await waitForHealth(cluster, on: follower, ["dash-3": "up"])

        // The killed instance, started again, follows the new leader's verdicts, and their changes.
        try cluster.restart(leaderNumber)
        let restarted = cluster.instance(leaderNumber)
        try await waitForHealth(cluster, on: restarted, ["dash-1": "up", "dash-2": "up", "dash-3": "up"])
        _ = try cluster.sql("UPDATE vms SET power_state = 'poweredOff' WHERE host_name = 'dash-1'")
        try await waitForHealth(cluster, on: restarted, ["dash-1": "poweredOff", "dash-2": "up"])
        let leadersAfterRestart = try await sweepLeaders(cluster, through: restarted)
        XCTAssertEqual(leadersAfterRestart, [successor], "the lead stays where it is")
    }

    /// Addresses of the running instances that lead the sweep, as `through` (default nginx) lists them.
    private func sweepLeaders(_ cluster: Cluster, through base: String? = nil) async throws -> [String] {
        let answer = try await cluster.request(.GET, "/api/v1/instances", base: base)
        guard answer.status == 200 else { throw ClusterProblem("instances: \(answer.status) \(answer.text)") }
        return try answer.decode([InstanceRow].self).filter { $0.state == "running" && $0.leads.contains(Self.task) }.map(\.address)
    }

    /// Waits until the VM list of instance `base` shows each named VM with the given health.
    private func waitForHealth(_ cluster: Cluster, on base: String, _ expected: [String: String]) async throws {
        struct Listing: Decodable {
            struct Item: Decodable {
                var hostName: String
                var health: String
            }
            var items: [Item]
        }
        var seen: [String: String] = [:]
        do {
            try await waitForCondition("\(base) shows \(expected)", timeout: 20) {
                let answer = try await cluster.request(.GET, "/api/v1/vms?q=dash", base: base)
                guard answer.status == 200 else { return false }
                seen = Dictionary(try answer.decode(Listing.self).items.map { ($0.hostName, $0.health) }, uniquingKeysWith: { $1 })
                return expected.allSatisfy { seen[$0.key] == $0.value }
            }
        } catch {
            throw ClusterProblem("\(error); it shows \(seen)")
        }
    }
}
