import Fluent
import Foundation
import Lab
import RemoteShell
import VSphere
import XCTVapor

@testable import App

/// Upgrades against the lab (root, vcsim, guest namespaces with sshd; run under the lab lock):
/// adopted `web` guests, a sample application in a real `git daemon`, rollouts through the
/// job engine onto the guests' releases/current layout.
final class UpgradeLabTests: XCTestCase {
    static let lab = LabConfiguration(
        stateDirectory: "/var/lib/flotilla-lab-upgradetest", roles: ["web"], preCreatedVMs: 20, pollInterval: .milliseconds(250))
    static let deployDirectory = "/srv/app"

    func testStageSwitchCanaryGateRollbackAndHostileRevisions() async throws {
        let repository = try Self.sampleRepository()
        defer { repository.stop() }
        try await Self.lab.withApp { app, vcsim in try await exercise(app, vcsim: vcsim, repository: repository) }
    }

    private func exercise(_ app: Application, vcsim: VcsimProcess, repository: ServedGitRepository) async throws {
        let admin = try TestClient(app)
        try await admin.signIn("admin", TestApp.adminPassword)
        let adopted = try await admin.adoptLab(Self.lab, vcsim: vcsim, roles: ["web"], patience: .seconds(120))
        XCTAssertEqual(adopted, 20)
        let flotilla = app.flotilla
        let foundRole = try await Role.query(on: app.db).filter(\.$name == "web").first()
        let role = try XCTUnwrap(foundRole)
        let foundEnvironment = try await App.Environment.query(on: app.db).filter(\.$name == "lab").first()
        let environmentID = try XCTUnwrap(foundEnvironment).requireID()
        let vms = try await VM.query(on: app.db).filter(\.$role.$id == role.requireID()).sort(\.$hostName).all()
        XCTAssertEqual(vms.count, 20)

        let application = try await UpgradeApplications(database: app.db, secrets: flotilla.secrets, actor: .system, logger: app.logger)
            .save(
                .init(
                    repositoryKind: "git", repositoryURL: repository.url, branch: "main", deployDirectory: Self.deployDirectory,
                    buildCommand: "printf built > BUILT", restartCommand: "cat REVISION >> ../../restarts.log",
                    healthKind: "command", healthTarget: "test -f healthy -a -f BUILT", healthTimeoutSeconds: 5, releasesKept: 3),
                roleID: try role.requireID())
        let applicationID = try application.requireID()
        let rollouts = app.upgradeRollouts
        let plan = RolloutPlan(canary: "1", batchSize: "50%", pauseSeconds: 0)
        func rollOut(
            _ revision: String, trigger: RolloutTrigger = .user(.init(name: "admin", ip: nil))
        ) async throws
            -> UpgradeRollouts.Started
        {
            try await rollouts.start(
                RolloutRequest(applicationID: applicationID, environmentID: environmentID, revision: revision, trigger: trigger, plan: plan)
            )
        }

        // Hostile revisions: refused before anything runs, nothing recorded, no job.
        let marker = "/tmp/flotilla-upgrade-hostile-\(UUID().uuidString)"
        for hostile in ["--upload-pack=touch \(marker)", "HEAD; rm -rf /", "../../x", "v1\ntouch \(marker)"] {
            do {
                _ = try await rollOut(hostile)
                XCTFail("\(hostile) was accepted")
            } catch let error as FlotillaError {
                XCTAssertEqual(error.kind, .validation, "\(hostile): \(error.message)")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker))
        let jobsAfterHostile = try await Job.query(on: app.db).count()
        let rolloutsAfterHostile = try await UpgradeRollout.query(on: app.db).count()
        XCTAssertEqual(rolloutsAfterHostile, 0)
        XCTAssertEqual(jobsAfterHostile, 0)

        // v1 then v2 everywhere: stage on all 20, canary, then two batches of 50 %.
        for tag in ["v1", "v2"] {
            let started = ContinuousClock.now
            let rollout = try await rollOut(tag)
            XCTAssertEqual(rollout.revision, repository.commits[tag])
            XCTAssertEqual(rollout.vmCount, 20)
            XCTAssertGreaterThan(rollout.fetchedBytes, 0)
            try await flotilla.jobs.waitUntilFinished(rollout.jobID, timeout: .seconds(180))
            try await assertJob(rollout.jobID, is: .succeeded, app)
            print("upgrade lab: rollout of \(tag) to 20 VMs in \(ContinuousClock.now - started)")
            let state = try await UpgradeRollout.find(rollout.rolloutID, on: app.db)
            XCTAssertEqual(state?.state, .succeeded)
        }
        let v1 = try XCTUnwrap(repository.commits["v1"])
        let v2 = try XCTUnwrap(repository.commits["v2"])
        for vm in vms {
            let revision = try await guest(app, vm, #"cat "$1/current/REVISION""#)
            XCTAssertEqual(revision.trimmingCharacters(in: .whitespacesAndNewlines), v2, vm.hostName)
        }
        let layout = try await guest(app, vms[0], #"readlink "$1/current"; ls "$1/releases"; cat "$1/releases.log""#)
        XCTAssertTrue(layout.hasPrefix("releases/\(v2.prefix(12))-"), layout)
        XCTAssertTrue(layout.contains(" switch \(v1.prefix(12))-"), layout)

        // v3 fails its health check: the canary fails, goes back to v2, nothing else switches.
        let bad = try await rollOut("v3")
        try await flotilla.jobs.waitUntilFinished(bad.jobID, timeout: .seconds(120))
        try await assertJob(bad.jobID, is: .failed, app)
        let halted = try await UpgradeRollout.find(bad.rolloutID, on: app.db)
        XCTAssertEqual(halted?.state, .halted)
        XCTAssertTrue(halted?.reason?.contains("not healthy") == true, halted?.reason ?? "")
        for vm in vms {
            let revision = try await guest(app, vm, #"cat "$1/current/REVISION""#)
            XCTAssertEqual(revision.trimmingCharacters(in: .whitespacesAndNewlines), v2, "\(vm.hostName) must be on v2")
        }
        let canaryRow = try await UpgradeRolloutVM.query(on: app.db).filter(\.$rolloutID == bad.rolloutID).filter(\.$batch == 0).first()
        XCTAssertEqual(canaryRow?.state, .switchedBack)
        let v3 = try XCTUnwrap(repository.commits["v3"])
        let v3IsBad = try await BadRevisions(database: app.db).isBad(applicationID: applicationID, revision: v3)
        XCTAssertTrue(v3IsBad)
        do {
            _ = try await rollOut("v3", trigger: .hook(name: "test hook"))
            XCTFail("a hook re-applied a bad revision")
        } catch let error as FlotillaError {
            XCTAssertEqual(error.kind, .conflict)
        }
        let haltEntries = try await LogEntry.query(on: app.db).filter(\.$kind == LogKind.upgrade.rawValue).filter(
            \.$action == "upgrade.halt"
        ).count()
        XCTAssertEqual(haltEntries, 1)
        let haltNotices = try await NotificationEventRecord.query(on: app.db).all().filter {
            $0.kind == NotificationEvent.Kind.rolloutHalted.rawValue
        }
        XCTAssertEqual(haltNotices.count, 1)

        // Fast-track rollback of all 20 to their previous release (v1); v2 is then marked bad.
        let rollbackStarted = ContinuousClock.now
        let rollbackJob = try await rollouts.rollback(
            applicationID: applicationID, vmIDs: try vms.map { try $0.requireID() }, revision: nil, by: .init(name: "admin", ip: nil))
        try await flotilla.jobs.waitUntilFinished(rollbackJob, timeout: .seconds(60))
        let rollbackTime = ContinuousClock.now - rollbackStarted
        print("upgrade lab: rollback of 20 VMs in \(rollbackTime)")
        try await assertJob(rollbackJob, is: .succeeded, app)
        XCTAssertLessThan(rollbackTime, .seconds(30))
        for vm in vms {
            let revision = try await guest(app, vm, #"cat "$1/current/REVISION""#)
            XCTAssertEqual(revision.trimmingCharacters(in: .whitespacesAndNewlines), v1, vm.hostName)
        }
        let v2IsBad = try await BadRevisions(database: app.db).isBad(applicationID: applicationID, revision: v2)
        XCTAssertTrue(v2IsBad)
        let rollbackEntries = try await LogEntry.query(on: app.db).filter(\.$kind == LogKind.upgrade.rawValue).filter(
            \.$action == "upgrade.rollback"
        )
        .filter(\.$result == LogResult.success.rawValue).count()
        XCTAssertEqual(rollbackEntries, 20)

        // A guest killed mid-switch (its restart command still running): the switch fails, the
        // rollout halts, the other VM never switches, and the guest boots with a `current` link.
        application.restartCommand = "sleep 5; cat REVISION >> ../../restarts.log"
        try await application.save(on: app.db)
        let pair = Array(vms.prefix(2))
        let killed = try await rollouts.start(
            RolloutRequest(
                applicationID: applicationID, environmentID: environmentID, revision: "v2", trigger: .user(.init(name: "admin", ip: nil)),
                vmIDs: try pair.map { try $0.requireID() }, plan: RolloutPlan(canary: "1", batchSize: "1", pauseSeconds: 0),
                allowBadRevision: true))
        let switching = try await eventually(timeout: .seconds(60)) {
            try await JobStep.query(on: app.db).filter(\.$job.$id == killed.jobID).filter(\.$kind == ReleaseSwitchStep.name)
                .filter(\.$status == .running).count() == 1
        }
        XCTAssertTrue(switching, "the canary's switch never started")
        try await Task.sleep(for: .seconds(1))
        let client = try await VSphereClient.connect(
            url: try XCTUnwrap(URL(string: vcsim.url)), username: vcsim.username, password: vcsim.password,
            trust: .pinnedSHA256(try XCTUnwrap(vcsim.thumbprint)))
        let machine = client.virtualMachine(ManagedObjectReference(type: "VirtualMachine", value: try XCTUnwrap(pair[0].vsphereReference)))
        try await machine.powerOff()
        try await flotilla.jobs.waitUntilFinished(killed.jobID, timeout: .seconds(180))
        try await assertJob(killed.jobID, is: .failed, app)
        let cut = try await UpgradeRollout.find(killed.rolloutID, on: app.db)
        XCTAssertEqual(cut?.state, .halted)
        XCTAssertTrue(cut?.reason?.contains("failed to switch") == true, cut?.reason ?? "")
        let other = try await UpgradeRolloutVM.query(on: app.db).filter(\.$rolloutID == killed.rolloutID).filter(\.$batch == 1).first()
        XCTAssertEqual(other?.state, .staged, "the second VM must not switch")
        let otherRevision = try await guest(app, pair[1], #"cat "$1/current/REVISION""#)
        XCTAssertEqual(otherRevision.trimmingCharacters(in: .whitespacesAndNewlines), v1)
        try await machine.powerOn()
        let back = try await eventually(timeout: .seconds(90)) { (try? await self.guest(app, pair[0], #"readlink "$1/current""#)) != nil }
        XCTAssertTrue(back, "the killed guest did not come back")
        let link = try await guest(app, pair[0], #"readlink "$1/current""#)
        XCTAssertTrue(link.hasPrefix("releases/"), "current must never be missing: '\(link)'")
        try? await client.close()
    }

    static let restartLab = LabConfiguration(
        stateDirectory: "/var/lib/flotilla-lab-upgraderestart", roles: ["web"], preCreatedVMs: 3, pollInterval: .milliseconds(250))

    /// vcsim killed and the platform stopped while the canary's switch runs on a real guest (its
    /// restart command still going): the job is left running — not failed, nothing switched back
    /// or marked bad — and the next platform start, with vSphere still gone (the inventory sync
    /// failing every second), resumes the rollout to the end. Then a third release removes the
    /// oldest one beyond the two kept, and every VM rolls back to a named kept release.
    func testVcsimKilledAndPlatformRestartedMidRolloutResumesThenRollsBack() async throws {
        let repository = try Self.sampleRepository()
        defer { repository.stop() }
        try await Self.restartLab.withApp(["FLOTILLA_SYNC_SECONDS": "1"]) { app, vcsim in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            let adopted = try await admin.adoptLab(Self.restartLab, vcsim: vcsim, roles: ["web"], patience: .seconds(120))
            XCTAssertEqual(adopted, 3)
            let foundRole = try await Role.query(on: app.db).filter(\.$name == "web").first()
            let roleID = try XCTUnwrap(foundRole).requireID()
            let foundEnvironment = try await App.Environment.query(on: app.db).filter(\.$name == "lab").first()
            let environmentID = try XCTUnwrap(foundEnvironment).requireID()
            let vms = try await VM.query(on: app.db).filter(\.$role.$id == roleID).sort(\.$hostName).all()
            let application = try await UpgradeApplications(
                database: app.db, secrets: app.flotilla.secrets, actor: .system, logger: app.logger
            ).save(
                .init(
                    repositoryKind: "git", repositoryURL: repository.url, branch: "main", deployDirectory: Self.deployDirectory,
                    buildCommand: nil, restartCommand: "cat REVISION >> ../../restarts.log", healthKind: "command",
                    healthTarget: "test -f healthy", healthTimeoutSeconds: 5, releasesKept: 2),
                roleID: roleID)
            let applicationID = try application.requireID()
            func rollOut(_ revision: String, on app: Application) async throws -> UpgradeRollouts.Started {
                try await app.upgradeRollouts.start(
                    RolloutRequest(
                        applicationID: applicationID, environmentID: environmentID, revision: revision,
                        trigger: .user(.init(name: "admin", ip: nil)), plan: RolloutPlan(canary: "1", batchSize: "1", pauseSeconds: 0)))
            }
            let first = try await rollOut("v1", on: app)
            try await app.flotilla.jobs.waitUntilFinished(first.jobID, timeout: .seconds(120))
            try await assertJob(first.jobID, is: .succeeded, app)

            application.restartCommand = "sleep 5; cat REVISION >> ../../restarts.log"
            try await application.save(on: app.db)
            let cut = try await rollOut("v2", on: app)
            let switching = try await eventually(timeout: .seconds(60)) {
                try await JobStep.query(on: app.db).filter(\.$job.$id == cut.jobID).filter(\.$kind == ReleaseSwitchStep.name)
                    .filter(\.$status == .running).count() == 1
            }
            XCTAssertTrue(switching, "the canary's switch never started")
            XCTAssertEqual(kill(vcsim.pid, SIGKILL), 0, "vcsim was not running")
            try await Task.sleep(for: .seconds(2))
            await app.flotilla.jobs.stop()

            let stopped = try await UpgradeRollout.find(cut.rolloutID, on: app.db)
            XCTAssertEqual(stopped?.state, .running, "a stop is no failure: \(stopped?.reason ?? "")")
            try await assertJob(cut.jobID, is: .running, app)
            let markedBad = try await BadRevisions(database: app.db).isBad(applicationID: applicationID, revision: cut.revision)
            XCTAssertFalse(markedBad)

            application.restartCommand = "cat REVISION >> ../../restarts.log"
            try await application.save(on: app.db)
            let restarted = try await TestApp.make(
                ["FLOTILLA_DATA_DIR": app.flotilla.config.dataDirectory, "FLOTILLA_SYNC_SECONDS": "1"], freshDatabase: false)
            do {
                try await restarted.flotilla.jobs.waitUntilFinished(cut.jobID, timeout: .seconds(120))
                try await assertJob(cut.jobID, is: .succeeded, restarted)
                let resumed = try await UpgradeRollout.find(cut.rolloutID, on: restarted.db)
                XCTAssertEqual(resumed?.state, .succeeded, resumed?.reason ?? "")
                let v1 = try XCTUnwrap(repository.commits["v1"])
                let v2 = try XCTUnwrap(repository.commits["v2"])
                for vm in vms {
                    let revision = try await guest(restarted, vm, #"cat "$1/current/REVISION""#)
                    XCTAssertEqual(revision.trimmingCharacters(in: .whitespacesAndNewlines), v2, vm.hostName)
                }

                let again = try await rollOut("v1", on: restarted)
                try await restarted.flotilla.jobs.waitUntilFinished(again.jobID, timeout: .seconds(120))
                try await assertJob(again.jobID, is: .succeeded, restarted)
                for vm in vms {
                    // v1's first release went; its new one is current and is never removed.
                    let kept = try await guest(restarted, vm, #"ls -1 "$1/releases" | grep -v '\.build\.log$'"#)
                    let names = kept.split(separator: "\n").map(String.init)
                    XCTAssertEqual(names.count, 2, "\(vm.hostName) keeps two releases: \(names)")
                    XCTAssertEqual(Set(names.map { String($0.prefix(12)) }), [String(v1.prefix(12)), String(v2.prefix(12))])
                }

                let rollback = try await restarted.upgradeRollouts.rollback(
                    applicationID: applicationID, vmIDs: try vms.map { try $0.requireID() }, revision: String(v2.prefix(12)),
                    by: .init(name: "admin", ip: nil))
                try await restarted.flotilla.jobs.waitUntilFinished(rollback, timeout: .seconds(60))
                try await assertJob(rollback, is: .succeeded, restarted)
                for vm in vms {
                    let revision = try await guest(restarted, vm, #"cat "$1/current/REVISION""#)
                    XCTAssertEqual(revision.trimmingCharacters(in: .whitespacesAndNewlines), v2, vm.hostName)
                }
            } catch {
                try await restarted.asyncShutdown()
                throw error
            }
            try await restarted.asyncShutdown()
        }
    }

    private func eventually(timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return try await condition()
    }

    private func assertJob(
        _ id: UUID, is status: JobStatus, _ app: Application, file: StaticString = #filePath, line: UInt = #line
    )
        async throws
    {
        let job = try await Job.query(on: app.db).filter(\.$id == id).with(\.$steps).first()
        XCTAssertEqual(job?.status, status, file: file, line: line)
        if job?.status != status {
            for step in job?.steps ?? [] where step.status != .succeeded {
                print("step \(step.title): \(step.status) \(step.log)")
            }
        }
    }

    /// Runs a fixed script on a guest as root with the deploy directory as `$1`; its output.
    /// The sample application: v1 and v2 healthy, v3 without its `healthy` file.
    private static func sampleRepository() throws -> ServedGitRepository {
        try ServedGitRepository.sampleApplication(versions: 3, isHealthy: { $0 < 3 })
    }

    private func guest(_ app: Application, _ vm: VM, _ script: StaticString) async throws -> String {
        let target = try await app.flotilla.vmOperations.login.target(for: vm, user: "root")
        let result = try await app.flotilla.shell.run(
            RemoteShell.Command.script(script, arguments: [Self.deployDirectory]), on: target, timeout: .seconds(10))
        return String(decoding: result.standardOutput, as: UTF8.self)
    }
}
