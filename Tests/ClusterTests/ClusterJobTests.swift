import Foundation
import XCTest

/// Jobs across three real instances behind nginx (SPEC BEY-8): power steps against vcsim VMs,
/// slowed by vcsim's `-method-delay`, so that they are running when an instance restarts or a
/// cancel arrives. The VM records point at vcsim's VMs; power steps need no guest.
final class ClusterJobTests: XCTestCase {
    func testRestartingOneInstanceLeavesTheOthersStepsAloneWhileAThirdFollowsTheJob() async throws {
        try await withPowerCluster(vms: 12, powerOffMilliseconds: 4000, concurrency: 2) { cluster, environment in
            let jobID = try await powerOff(cluster, environment)
            // Every instance runs steps of the job.
            let owners = try await waitForValue("steps running on all three instances", timeout: 30) { () -> [String: String]? in
                let running = try self.runningSteps(cluster, jobID)
                return Set(running.values).count == 3 ? running : nil
            }
            let restarted = try XCTUnwrap(cluster.instanceID(2))
            let othersSteps = owners.filter { $0.value != restarted }.map(\.key)
            XCTAssertFalse(othersSteps.isEmpty)

            try cluster.restart(2)
            // Instance 3's job API follows the job as every instance runs it (the job page
            // reads it every second): the count of finished steps rises while it runs.
            var seen: [Int] = []
            let status = try await waitForValue("the job ends", timeout: 120, every: .milliseconds(500)) { () -> String? in
                let answer = try await cluster.request(.GET, "/api/v1/jobs/\(jobID)", base: cluster.instance(3))
                let job = try answer.decode(FollowedJob.self)
                let done = job.steps.filter { $0.status == "succeeded" }.count
                if seen.last != done { seen.append(done) }
                return ["queued", "running"].contains(job.status) ? nil : job.status
            }
            XCTAssertEqual(status, "succeeded")
            // Steps end in waves (six at a time, 4 s each), so one count between the first and the last is what a follower sees.
            XCTAssertFalse(seen.filter { $0 > 0 && $0 < 12 }.isEmpty, "progress seen through instance 3: \(seen)")
            XCTAssertEqual(seen.last, 12)
            let page = try await cluster.request(.GET, "/jobs/\(jobID)", base: cluster.instance(3))
            XCTAssertEqual(page.status, 200)
            XCTAssertEqual(page.text.components(separatedBy: "<span class=\"step-status\">succeeded</span>").count - 1, 12)
            let list = othersSteps.map { "'\($0)'" }.joined(separator: ", ")
            // The other instances' steps ran once, to the end, where they were.
            let rows = try cluster.sql(
                "SELECT status, attempts, log LIKE '%interrupted%' FROM job_steps WHERE id IN (\(list))")
            XCTAssertEqual(rows.count, othersSteps.count)
            for row in rows {
                XCTAssertEqual(row[0], "succeeded", "a step of another instance: \(row)")
                XCTAssertEqual(row[1], "1", "a step of another instance ran again: \(row)")
                XCTAssertEqual(row[2], "f", "a step of another instance was interrupted: \(row)")
            }
            XCTAssertEqual(try cluster.count("SELECT count(*) FROM job_steps WHERE job_id = '\(jobID)' AND status <> 'succeeded'"), 0)
        }
    }

    func testCancelSentToInstanceCStopsTheStepsRunningOnInstanceAWithinASecond() async throws {
        try await withPowerCluster(vms: 9, powerOffMilliseconds: 60_000, concurrency: 3) { cluster, environment in
            let jobID = try await powerOff(cluster, environment, through: cluster.instance(1))
            let instanceA = try XCTUnwrap(cluster.instanceID(1))
            // All nine steps claimed (three per instance, each held for a minute): the counts
            // below then stay still while the list and the database are read one after the other.
            _ = try await waitForValue("every step running, some on instance A", timeout: 30) { () -> Bool? in
                let running = try self.runningSteps(cluster, jobID)
                return running.count == 9 && running.values.contains(instanceA) ? true : nil
            }
            // The instances list counts each instance's steps (leases not expired) as the database does.
            let answer = try await cluster.request(.GET, "/api/v1/instances")
            let listed = try answer.decode([InstanceRow].self)
            let counted = try cluster.sql(
                "SELECT lease_owner, count(*) FROM job_steps WHERE lease_owner IS NOT NULL AND lease_expires_at > now() GROUP BY lease_owner"
            )
            XCTAssertEqual(
                Dictionary(
                    uniqueKeysWithValues: listed.filter { $0.stepsRunning > 0 }.map { ($0.id.uuidString.lowercased(), $0.stepsRunning) }),
                Dictionary(uniqueKeysWithValues: counted.map { ($0[0], Int($0[1]) ?? -1) }))
            XCTAssertGreaterThan(listed.map(\.stepsRunning).reduce(0, +), 0)

            let cancel = try await cluster.request(.POST, "/api/v1/jobs/\(jobID)/cancel", base: cluster.instance(3))
            let sent = Date()
            XCTAssertEqual(cancel.status, 200, cancel.text)
            _ = try await waitForValue("no step of the job runs on instance A", timeout: 10, every: .milliseconds(20)) { () -> Bool? in
                try self.runningSteps(cluster, jobID).values.contains(instanceA) ? nil : true
            }
            let stopped = Date().timeIntervalSince(sent)
            print("cluster: cancel sent to instance C stopped instance A's steps after \(String(format: "%.2f", stopped)) s")
            XCTAssertLessThanOrEqual(stopped, 1.0)
            let status = try await waitForValue("the job ends", timeout: 10) { () -> String? in
                let status = try cluster.sql("SELECT status FROM jobs WHERE id = '\(jobID)'").first?.first
                return ["queued", "running", nil].contains(status) ? nil : status
            }
            XCTAssertEqual(status, "cancelled")
        }
    }

    // MARK: - Helpers

    /// vcsim with `vms` VMs whose power-off takes `powerOffMilliseconds`, three instances
    /// running `concurrency` steps each, and an environment holding the VMs.
    private func withPowerCluster(
        vms: Int, powerOffMilliseconds: Int, concurrency: Int, _ body: (Cluster, String) async throws -> Void
    ) async throws {
        let vcsim = try Vcsim(vms: vms, extraArguments: ["-method-delay", "PowerOffVM_Task=\(powerOffMilliseconds)"])
        defer { vcsim.stop() }
        let cluster = try Cluster(
            instances: 3,
            settings: [
                "FLOTILLA_SYNC_SECONDS": "0", "FLOTILLA_JOB_CONCURRENCY": String(concurrency),
                "FLOTILLA_REACHABILITY_SECONDS": "0", "FLOTILLA_METRICS_SECONDS": "0",
            ])
        do {
            try await cluster.signIn()
            let environment = try await cluster.addEnvironment(vcsim: vcsim)
            let machines = try vcsim.machines().prefix(vms)
            XCTAssertEqual(machines.count, vms)
            let values = machines.enumerated().map { index, machine in
                "('power-\(index + 1)', '127.0.9.\(index + 1)', '\(machine.reference)')"
            }.joined(separator: ", ")
            try cluster.insertVMs(values: values, environment: environment, powerState: "poweredOn")
            try await body(cluster, environment)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    private func powerOff(_ cluster: Cluster, _ environment: String, through base: String? = nil) async throws -> String {
        let answer = try await cluster.request(
            .POST, "/api/v1/environments/power", json: ["action": "off", "ids": [environment]], base: base)
        XCTAssertEqual(answer.status, 202, answer.text)
        return try XCTUnwrap(try answer.decode([String: AnyDecodable].self)["jobID"]?.text)
    }

    /// Step ID → lease owner of the job's running steps.
    private func runningSteps(_ cluster: Cluster, _ jobID: String) throws -> [String: String] {
        let rows = try cluster.sql(
            "SELECT id, lease_owner FROM job_steps WHERE job_id = '\(jobID)' AND status = 'running' AND lease_owner IS NOT NULL")
        return Dictionary(rows.map { ($0[0], $0[1]) }, uniquingKeysWith: { first, _ in first })
    }
}

/// A job as `GET /api/v1/jobs/{id}` answers it (the fields the tests read).
struct FollowedJob: Decodable {
    struct Step: Decodable {
        var status: String
    }
    var status: String
    var steps: [Step]
}

/// Polls until `value` answers something.
func waitForValue<T>(
    _ what: String, timeout: TimeInterval, every interval: Duration = .milliseconds(250), _ value: () async throws -> T?
) async throws -> T {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if let found = try await value() { return found }
        try await Task.sleep(for: interval)
    }
    throw ClusterProblem("timed out after \(Int(timeout)) s waiting until \(what)")
}

/// Polls until `condition` holds.
func waitForCondition(_ what: String, timeout: TimeInterval, _ condition: () async throws -> Bool) async throws {
    _ = try await waitForValue(what, timeout: timeout) { try await condition() ? true : nil }
}
