import AsyncHTTPClient
import Foundation
import XCTest

/// Three real `flotilla serve` processes on one PostgreSQL behind nginx, configured from
/// deploy/ (SPEC BEY-8). Run as root by scripts/test.
final class ClusterTests: XCTestCase {
    /// The issue's bound on a takeover after an instance dies.
    static let takeoverLimit: TimeInterval = 30

    func testSyncLeaderKilledAnotherLeadsWithin30SecondsWithoutDoubledAuditEntries() async throws {
        let vcsim = try Vcsim()
        defer { vcsim.stop() }
        let cluster = try Cluster(instances: 3, settings: ["FLOTILLA_SYNC_SECONDS": "1"])
        do {
            try await syncLeaderFailover(cluster, vcsim: vcsim)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    private func syncLeaderFailover(_ cluster: Cluster, vcsim: Vcsim) async throws {
        // The health check answers through nginx without signing in, naming the instance.
        let health = try await cluster.request(.GET, "/api/v1/health")
        XCTAssertEqual(health.status, 200, health.text)
        XCTAssertTrue(health.text.contains("\"status\":\"ok\""), health.text)

        try await cluster.signIn()
        let instances = try await runningInstances(cluster)
        XCTAssertEqual(instances.count, 3, "the instances list through nginx: \(instances.map(\.address))")
        XCTAssertEqual(
            Set(instances.map(\.address)), Set((1...3).map { cluster.instance($0).replacingOccurrences(of: "http://", with: "") }))

        // VMs the sync will find gone from vSphere: each must be audited as missing once, by
        // whichever instance leads, although all three run the sync every second.
        try await addGoneVMs(cluster, vcsim: vcsim, names: (1...150).map { "gone-\($0)" })
        try await waitForCondition("the sync marks 150 VMs missing", timeout: 60) {
            try cluster.count("SELECT count(*) FROM vms WHERE status = 'missing'") == 150
        }
        try await Task.sleep(for: .seconds(3))
        XCTAssertEqual(try missingEntries(cluster), 150, "audit entries of the sync were doubled")

        let leader = try await syncLeader(cluster)
        let leaderNumber = try XCTUnwrap(cluster.number(of: leader.address))
        try cluster.kill(leaderNumber)
        let killed = Date()
        var successor: InstanceRow?
        while successor == nil, Date().timeIntervalSince(killed) < Self.takeoverLimit + 10 {
            try await Task.sleep(for: .milliseconds(250))
            successor = try await runningInstances(cluster).first { $0.id != leader.id && $0.leads.contains("inventory-sync") }
        }
        let takeover = Date().timeIntervalSince(killed)
        print(
            "cluster: sync leader \(leader.address) SIGKILLed; \(successor?.address ?? "nobody") leads after \(String(format: "%.1f", takeover)) s"
        )
        XCTAssertNotNil(successor, "nobody took over the inventory sync")
        XCTAssertLessThanOrEqual(takeover, Self.takeoverLimit)

        // nginx leaves the dead instance out: the health check keeps answering.
        for _ in 1...6 {
            let answer = try await cluster.request(.GET, "/api/v1/health", anonymous: true)
            XCTAssertEqual(answer.status, 200, answer.text)
        }

        // The new leader audits new disappearances once too.
        try await addGoneVMs(cluster, vcsim: vcsim, names: (151...200).map { "gone-\($0)" })
        try await waitForCondition("the new leader marks 50 more VMs missing", timeout: 30) {
            try cluster.count("SELECT count(*) FROM vms WHERE status = 'missing'") == 200
        }
        try await Task.sleep(for: .seconds(3))
        XCTAssertEqual(try missingEntries(cluster), 200, "audit entries of the sync were doubled after the takeover")

        // Without the database an instance says so, to a load balancer asking it or nginx.
        try cluster.stopDatabase()
        let direct = try await waitForValue("an instance answers 503 without its database", timeout: 30) { () -> Cluster.Answer? in
            let answer = try await cluster.request(
                .GET, "/api/v1/health", base: successor.map { "http://" + $0.address }, anonymous: true)
            return answer.status == 503 ? answer : nil
        }
        XCTAssertTrue(direct.text.contains("\"status\":\"database unavailable\""), direct.text)
        let throughNginx = try await cluster.request(.GET, "/api/v1/health", anonymous: true)
        // 503 passed on, or 502 once nginx has left every instance out.
        XCTAssertTrue([502, 503].contains(throughNginx.status), "\(throughNginx.status): \(throughNginx.text)")
    }

    // MARK: - Helpers

    private func runningInstances(_ cluster: Cluster) async throws -> [InstanceRow] {
        let answer = try await cluster.request(.GET, "/api/v1/instances")
        guard answer.status == 200 else { throw ClusterProblem("instances: \(answer.status) \(answer.text)") }
        return try answer.decode([InstanceRow].self).filter { $0.state == "running" }
    }

    private func syncLeader(_ cluster: Cluster) async throws -> InstanceRow {
        let leaders = try await runningInstances(cluster).filter { $0.leads.contains("inventory-sync") }
        XCTAssertEqual(leaders.count, 1, "instances leading the sync: \(leaders.map(\.address))")
        return try XCTUnwrap(leaders.first)
    }

    private func missingEntries(_ cluster: Cluster) throws -> Int {
        let perVM = try cluster.sql(
            "SELECT vm_name, count(*) FROM log_entries WHERE action = 'vm.missing' GROUP BY vm_name HAVING count(*) > 1")
        XCTAssertEqual(perVM.count, 0, "VMs audited as missing more than once: \(perVM.prefix(5))")
        return try cluster.count("SELECT count(*) FROM log_entries WHERE action = 'vm.missing'")
    }

    /// VM records whose vSphere references do not exist (the environment is made the first time).
    private func addGoneVMs(_ cluster: Cluster, vcsim: Vcsim, names: [String]) async throws {
        let existing = try cluster.sql("SELECT id FROM environments WHERE name = 'cluster'").first?.first
        let environment: String
        if let existing {
            environment = existing
        } else {
            environment = try await cluster.addEnvironment(vcsim: vcsim)
        }
        let values = names.map { name in
            let number = Int(name.split(separator: "-").last ?? "") ?? 0
            return "('\(name)', '127.77.\(number / 250).\(number % 250 + 1)', 'vm-\(name)')"
        }.joined(separator: ", ")
        try cluster.insertVMs(values: values, environment: environment)
    }
}

/// A JSON value read only for its text (IDs in answers).
struct AnyDecodable: Decodable {
    var text: String?
    init(from decoder: any Decoder) throws {
        text = try? decoder.singleValueContainer().decode(String.self)
    }
}
