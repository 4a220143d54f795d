import Foundation
import Lab
import XCTest

/// A 30-VM blueprint deployed through nginx onto three instances while one of them is killed
/// (SPEC BEY-8): the lab's vcsim and guests, so every step is the real one (clone, boot, SSH).
/// Run under the lab lock: `flock /tmp/flotilla-lab.lock swift test --skip-build --filter ClusterLabTests`.
final class ClusterLabTests: XCTestCase {
    static let lab = LabConfiguration(
        stateDirectory: "/var/lib/flotilla-lab-clustertest", vcsim: .launch(VcsimLaunch()), roles: ["web"],
        pollInterval: .milliseconds(250))
    static let vmCount = 30

    func testThirtyVMBlueprintFinishesOnceWhenAnInstanceIsKilledMidJob() async throws {
        try await Lab.withRunning(Self.lab) { vcsim in
            // Six steps per instance: no instance can hold all 16 of the connection's slots, so all three run steps.
            let cluster = try Cluster(
                instances: 3,
                settings: ["FLOTILLA_GUEST_BOOT_SECONDS": "120", "FLOTILLA_SYNC_SECONDS": "5", "FLOTILLA_JOB_CONCURRENCY": "6"])
            var failure: (any Error)?
            do {
                try await deployWhileKilling(cluster, vcsim: vcsim)
            } catch {
                failure = error
            }
            await cluster.stop()
            if let failure { throw failure }
        }
    }

    private func deployWhileKilling(_ cluster: Cluster, vcsim: VcsimProcess) async throws {
        try await cluster.signIn()
        _ = try await cluster.addEnvironment(
            vsphere: vcsim.url, username: vcsim.username, password: vcsim.password, thumbprint: vcsim.thumbprint)
        let blueprint = """
            name: fleet
            roles: { web: \(Self.vmCount) }
            network: { range: 10.77.50.10-10.77.50.99, netmask: 255.255.0.0, gateway: 10.77.0.1, dns: [10.77.0.1] }
            password: shared
            """
        let deploy = try await cluster.request(
            .POST, "/api/v1/blueprints/deploy",
            json: ["blueprint": blueprint, "password": "Fleet-pass-1", "passwordConfirmation": "Fleet-pass-1"])
        XCTAssertEqual(deploy.status, 202, deploy.text)
        let jobID = try XCTUnwrap(try deploy.decode([String: AnyDecodable].self)["jobID"]?.text)

        // Mid-job: some steps done, every instance running others; the victim runs the most.
        let victim = try await waitForValue("steps running on every instance after the first succeeded", timeout: 180) { () -> Int? in
            let succeeded = try cluster.count("SELECT count(*) FROM job_steps WHERE job_id = '\(jobID)' AND status = 'succeeded'")
            let owners = try cluster.sql(
                "SELECT lease_owner FROM job_steps WHERE job_id = '\(jobID)' AND status = 'running' AND lease_owner IS NOT NULL")
            let running = Dictionary(grouping: owners.map { $0[0] }, by: { $0 }).mapValues(\.count)
            guard succeeded > 0, running.count == 3, let busiest = running.max(by: { $0.value < $1.value }), busiest.value >= 2 else {
                return nil
            }
            return try (1...3).first { try cluster.instanceID($0) == busiest.key }
        }
        let victimID = try XCTUnwrap(try cluster.instanceID(victim))
        try cluster.kill(victim)
        let killed = Date()
        // Listed after the kill: a living instance claims the next steps within milliseconds of
        // its last ones ending, so a list made before could miss steps it held when it died.
        // Nothing changes them before their leases expire.
        let orphaned = try cluster.sql(
            "SELECT id FROM job_steps WHERE job_id = '\(jobID)' AND status = 'running' AND lease_owner = '\(victimID)'"
        ).map { $0[0] }
        let list = orphaned.map { "'\($0)'" }.joined(separator: ", ")
        // Taken over: another instance found the expired leases and queued the steps again (or
        // ended them); running them again waits for a free slot, which the end of the job checks.
        // A step that ended just before the kill keeps the killed instance as its last owner.
        try await waitForCondition("another instance takes over the killed instance's steps", timeout: 60) {
            try cluster.count(
                "SELECT count(*) FROM job_steps WHERE id IN (\(list)) AND status = 'running' AND lease_owner = '\(victimID)'") == 0
        }
        let takeover = Date().timeIntervalSince(killed)
        print(
            "cluster: instance \(victim) SIGKILLed with \(orphaned.count) running steps; taken over after \(String(format: "%.1f", takeover)) s"
        )
        XCTAssertLessThanOrEqual(takeover, ClusterTests.takeoverLimit)

        let status = try await waitForValue("the deployment ends", timeout: 600) { () -> String? in
            let status = try cluster.sql("SELECT status FROM jobs WHERE id = '\(jobID)'").first?.first
            return ["queued", "running", nil].contains(status) ? nil : status
        }
        let unfinished = try cluster.sql(
            "SELECT title, status, attempts, translate(right(log, 300), E'\\n\\t', '  ') FROM job_steps WHERE job_id = '\(jobID)' AND status <> 'succeeded'"
        )
        XCTAssertEqual(status, "succeeded", "steps not succeeded: \(unfinished.prefix(3))")
        // Only the killed instance's steps ran again (after their check); no other step twice.
        let again = try cluster.sql("SELECT id FROM job_steps WHERE job_id = '\(jobID)' AND attempts > 1").map { $0[0] }
        let extra = again.filter { !orphaned.contains($0) }.map { "'\($0)'" }.joined(separator: ", ")
        let extraLogs =
            extra.isEmpty
            ? []
            : try cluster.sql(
                "SELECT title, attempts, lease_owner, translate(log, E'\\n\\t', '  ') FROM job_steps WHERE id IN (\(extra))")
        XCTAssertTrue(
            Set(again).isSubset(of: orphaned),
            "steps run twice that the killed instance (\(victimID)) did not hold: \(extraLogs)")

        // vSphere, as pyvmomi sees it: every VM of the blueprint exactly once, nothing else made.
        let machines = try Vcsim.machines(url: vcsim.url, username: vcsim.username, password: vcsim.password)
        let fleet = machines.map(\.name).filter { $0.hasPrefix("fleet-") }
        let expected = (1...Self.vmCount).map { String(format: "fleet-web-%02d", $0) }
        XCTAssertEqual(fleet.sorted(), expected, "VMs on vSphere (duplicates or orphans)")
        XCTAssertEqual(try cluster.count("SELECT count(*) FROM vms WHERE host_name LIKE 'fleet-%' AND status = 'ready'"), Self.vmCount)
    }
}
