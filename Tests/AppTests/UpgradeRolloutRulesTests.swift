import Fluent
import Foundation
import XCTVapor

@testable import App

/// Rollouts through the real job engine with a real `git daemon` and the guests in memory
/// (issue 12 §4, §7): root work through `sudo -n` for a role user other than root, the halted
/// rollout's notification, a platform restarted mid-switch, and vSphere gone during a rollout.
/// The same paths on real guests are in UpgradeLabTests.
final class UpgradeRolloutRulesTests: XCTestCase {
    /// Tags v1 and v2, served once for the class (a static is made on first use, once).
    private static let repository = Result { try ServedGitRepository.sampleApplication(versions: 2) }
    private static let admin = AuditLog.Actor(name: "admin", ip: nil)
    private static let plan = RolloutPlan(canary: "1", batchSize: "50%", pauseSeconds: 0)

    override func setUp() async throws {
        _ = try Self.repository.get()
    }

    override class func tearDown() {
        try? repository.get().stop()
    }

    /// The world with `count` VMs of `role` (SSH user `user`), the application on the loopback
    /// repository (HTTP health check unless given) and v1 rolled out everywhere.
    private func withFleet(
        _ count: Int, role: String = "web", user: String = "root", healthKind: String = "http", extra: [String: String] = [:],
        _ body: (InMemoryWorld, ReleaseGuests, _ applicationID: UUID, _ vms: [API.VMBody]) async throws -> Void
    ) async throws {
        var releaseGuests: ReleaseGuests?
        try await InMemoryWorld.run(
            extra,
            guests: { guests in
                let wrapped = ReleaseGuests(guests: guests)
                releaseGuests = wrapped
                return wrapped
            }
        ) { world in
            let guests = try XCTUnwrap(releaseGuests)
            if role != "web" {
                let answer = try await world.admin.request(
                    .POST, "/api/v1/roles",
                    json: Roles.Input(name: role, connectionID: world.connectionID, template: "tpl-web", sshUser: user, services: "sshd"))
                XCTAssertEqual(answer.status, .created, answer.body.string)
            }
            var vms: [API.VMBody] = []
            for index in 1...count {
                let name = "\(role)-\(String(format: "%02d", index))"
                let ip = "10.77.5.\(20 + index)"
                await world.shell.add(.init(hostName: name, user: user, password: InMemoryWorld.guestPassword), at: ip)
                let answer = try await world.admin.request(
                    .POST, "/api/v1/environments/\(world.environmentID)/vms",
                    json: VMs.Input(
                        hostName: name, ip: ip, netmask: "24", gateway: "10.77.5.1", dns1: "10.77.5.1", dns2: nil, role: role,
                        password: InMemoryWorld.guestPassword, passwordConfirmation: InMemoryWorld.guestPassword, notes: nil))
                XCTAssertEqual(answer.status, .accepted, answer.body.string)
                let created = try world.admin.decode(API.NewVMAnswer.self, answer)
                let job = try await world.waitForJob(created.jobID)
                XCTAssertEqual(job.status, "succeeded", job.steps?.map(\.log).joined() ?? "")
                vms.append(try await world.vm(created.vm.id))
            }
            let roleID = try await Role.query(on: world.app.db).filter(\.$name == role).first()?.requireID()
            let application = UpgradeApplication()
            application.roleID = try XCTUnwrap(roleID)
            application.repositoryKind = "git"
            application.repositoryURL = try Self.repository.get().url
            application.branch = "main"
            application.deployDirectory = "/srv/app"
            application.restartCommand = "sh restart.sh"
            application.healthKind = healthKind
            application.healthTarget = healthKind == "http" ? "http://127.0.0.1:8000/version" : "test -f healthy"
            application.healthTimeoutSeconds = 2
            application.releasesKept = 5
            try await application.create(on: world.app.db)
            let applicationID = try application.requireID()
            let first = try await rollOut("v1", applicationID, world)
            try await world.app.flotilla.jobs.waitUntilFinished(first.jobID)
            try await assertRollout(first, is: .succeeded, world.app)
            try await body(world, guests, applicationID, vms)
        }
    }

    private func rollOut(_ revision: String, _ applicationID: UUID, _ world: InMemoryWorld) async throws -> UpgradeRollouts.Started {
        try await world.app.upgradeRollouts.start(
            RolloutRequest(
                applicationID: applicationID, environmentID: world.environmentID, revision: revision, trigger: .user(Self.admin),
                plan: Self.plan))
    }

    private func assertRollout(
        _ started: UpgradeRollouts.Started, is state: UpgradeRollout.State, _ app: Application, file: StaticString = #filePath,
        line: UInt = #line
    ) async throws {
        let rollout = try await UpgradeRollout.find(started.rolloutID, on: app.db)
        let job = try await Job.query(on: app.db).filter(\.$id == started.jobID).with(\.$steps).first()
        XCTAssertEqual(
            rollout?.state, state,
            "\(rollout?.reason ?? ""); " + (job?.steps ?? []).map { "\($0.title): \($0.status) \($0.log)" }.joined(separator: "\n"),
            file: file, line: line)
    }

    /// Where each VM's `current` points, by address.
    private func currents(_ guests: ReleaseGuests, _ vms: [API.VMBody]) async -> [String?] {
        let releases = await guests.releases
        return vms.map { releases[$0.ip]?.current }
    }

    func testRootWorkOnTheGuestGoesThroughSudoWhenTheRoleUserIsNotRoot() async throws {
        try await withFleet(2, role: "app", user: "deploy", healthKind: "command") { world, guests, applicationID, vms in
            let second = try await rollOut("v2", applicationID, world)
            try await world.app.flotilla.jobs.waitUntilFinished(second.jobID)
            try await assertRollout(second, is: .succeeded, world.app)
            let rollback = try await world.app.upgradeRollouts.rollback(
                applicationID: applicationID, vmIDs: vms.map(\.id), revision: nil, by: Self.admin)
            try await world.app.flotilla.jobs.waitUntilFinished(rollback)
            let job = try await world.job(rollback)
            XCTAssertEqual(job.status, "succeeded", job.steps?.map(\.log).joined() ?? "")

            let calls = await guests.calls
            let kinds = Set(calls.map(\.script))
            XCTAssertTrue(
                kinds.isSuperset(of: [.stage, .switchRelease, .rollbackTarget, .healthCommand]), "\(kinds)")
            for call in calls {
                XCTAssertEqual(call.user, "deploy")
                // The health command runs the repository's code: as the role's user (UpgradeGuestUserTests).
                XCTAssertEqual(call.throughSudo, call.script != .healthCommand, "\(call.script) on \(call.host)")
            }
        }
    }

    func testRootLoginsRunReleaseScriptsWithoutSudo() async throws {
        try await withFleet(1) { _, guests, _, _ in
            let calls = await guests.calls
            XCTAssertFalse(calls.isEmpty)
            XCTAssertTrue(calls.allSatisfy { $0.user == "root" && !$0.throughSudo })
        }
    }

    func testAHaltedRolloutSwitchesTheCanaryBackAndNotifiesOnce() async throws {
        try await withFleet(3) { world, guests, applicationID, vms in
            let before = await currents(guests, vms)
            await guests.setUnhealthy([vms[0].ip])
            let bad = try await rollOut("v2", applicationID, world)
            try await world.app.flotilla.jobs.waitUntilFinished(bad.jobID)
            try await assertRollout(bad, is: .halted, world.app)
            let after = await currents(guests, vms)
            XCTAssertEqual(after, before, "the canary is back and nothing else switched")
            let isBad = try await BadRevisions(database: world.app.db).isBad(applicationID: applicationID, revision: bad.revision)
            XCTAssertTrue(isBad)

            let notices = try await NotificationEventRecord.query(on: world.app.db)
                .filter(\.$kind == NotificationEvent.Kind.rolloutHalted.rawValue).all()
            XCTAssertEqual(notices.count, 1)
            XCTAssertEqual(notices.first?.source, NotificationEvent.Source.upgrade.rawValue)
            XCTAssertEqual(notices.first?.vmName, vms[0].hostName)
            XCTAssertTrue(notices.first?.details?.contains("staging") == true, notices.first?.details ?? "")
            XCTAssertTrue(notices.first?.details?.contains("not healthy") == true, notices.first?.details ?? "")
        }
    }

    /// A platform stopping while a switch runs (its restart command still going) gives the step
    /// back; the next start reruns it and the rollout carries on. A stop is not a failure: the
    /// rollout must not halt, switch back, or mark the revision bad.
    func testAPlatformRestartedMidSwitchResumesTheRollout() async throws {
        try await withFleet(2) { world, guests, applicationID, vms in
            let v1 = await currents(guests, vms)
            await guests.setRestartDuration(.seconds(30))
            let started = try await rollOut("v2", applicationID, world)
            let switching = try await eventually {
                try await JobStep.query(on: world.app.db).filter(\.$job.$id == started.jobID)
                    .filter(\.$kind == ReleaseSwitchStep.name).filter(\.$status == .running).count() == 1
            }
            XCTAssertTrue(switching, "the canary's switch never started")
            try await Task.sleep(for: .milliseconds(300))
            await world.app.flotilla.jobs.stop()

            let cut = try await UpgradeRollout.find(started.rolloutID, on: world.app.db)
            XCTAssertEqual(cut?.state, .running, "a platform stop is no failure: \(cut?.reason ?? "")")
            let markedBad = try await BadRevisions(database: world.app.db).isBad(applicationID: applicationID, revision: started.revision)
            XCTAssertFalse(markedBad)
            let job = try await Job.find(started.jobID, on: world.app.db)
            XCTAssertEqual(job?.status, .running, "the job waits for the next start")

            await guests.setRestartDuration(.zero)
            let config = world.app.flotilla.config
            let restarted = try await TestApp.make(
                ["FLOTILLA_DATA_DIR": config.dataDirectory, "FLOTILLA_SYNC_SECONDS": "0", "FLOTILLA_REACHABILITY_SECONDS": "0"],
                freshDatabase: false, outside: OutsideSystems(vsphere: world.vsphere, shell: guests))
            do {
                try await restarted.flotilla.jobs.waitUntilFinished(started.jobID, timeout: .seconds(60))
                try await assertRollout(started, is: .succeeded, restarted)
                let now = await currents(guests, vms)
                XCTAssertTrue(now.allSatisfy { $0?.hasPrefix(String(started.revision.prefix(12))) == true }, "\(now)")
                // The cut-off switch's earlier release is v1's, not the release it was switching to.
                let recorded = try await UpgradeVMRelease.query(on: restarted.db).filter(\.$applicationID == applicationID).all()
                XCTAssertEqual(Set(recorded.compactMap(\.previousRelease)), Set(v1.compactMap { $0 }))
            } catch {
                try await restarted.asyncShutdown()
                throw error
            }
            try await restarted.asyncShutdown()
        }
    }

    /// A VM that fails to stage (issue 12 §4) does not stop the others from staging, is reported
    /// with its reason, and nothing goes live: the rollout halts before any switch.
    func testAVMFailingToStageIsReportedAndNothingSwitches() async throws {
        try await withFleet(3) { world, guests, applicationID, vms in
            let before = await currents(guests, vms)
            await guests.setFailingToStage([vms[1].ip])
            let started = try await rollOut("v2", applicationID, world)
            try await world.app.flotilla.jobs.waitUntilFinished(started.jobID)
            try await assertRollout(started, is: .halted, world.app)
            let rollout = try await UpgradeRollout.find(started.rolloutID, on: world.app.db)
            XCTAssertEqual(rollout?.reason, "\(vms[1].hostName) failed to stage; nothing was switched")
            let after = await currents(guests, vms)
            XCTAssertEqual(after, before, "nothing switched")
            let releases = await guests.releases
            for vm in [vms[0], vms[2]] {
                XCTAssertTrue(
                    releases[vm.ip]?.staged.contains { $0.hasPrefix(String(started.revision.prefix(12))) } == true,
                    "\(vm.hostName) staged although \(vms[1].hostName) failed")
            }
            let rows = try await UpgradeRolloutVM.query(on: world.app.db).filter(\.$rolloutID == started.rolloutID).all()
            let failed = try XCTUnwrap(rows.first { $0.vmID == vms[1].id })
            XCTAssertEqual(failed.state, .stageFailed)
            XCTAssertTrue(failed.detail?.contains("no space left on device") == true, failed.detail ?? "")
            XCTAssertEqual(rows.filter { $0.state == .staged }.count, 2)
            let job = try await world.job(started.jobID)
            XCTAssertEqual(job.steps?.filter { $0.kind == ReleaseSwitchStep.name && $0.status == "succeeded" }.count, 0)
            let entries = try await LogEntry.query(on: world.app.db).filter(\.$action == "upgrade.stage").all()
            XCTAssertEqual(entries.map(\.vmName), [vms[1].hostName])
        }
    }

    /// The upgrade page (issue 12 §5): every VM with its current, previous and target revision
    /// and drift, a drift filter, and actions on a selection and per row; a row's button acts on
    /// that VM alone, whatever else is selected.
    func testTheUpgradePageActsOnARowOrASelection() async throws {
        try await withFleet(3) { world, guests, applicationID, vms in
            let admin = world.admin
            func jobID(of answer: TestingHTTPResponse) throws -> UUID {
                let location = try XCTUnwrap(answer.headers.first(name: .location), answer.body.string)
                return try XCTUnwrap(UUID(uuidString: String(location.split(separator: "/").last ?? "")), location)
            }
            func revisions() async -> [String?] { await currents(guests, vms).map { $0.map { String($0.prefix(12)) } } }
            let first = await revisions()
            let v1 = try XCTUnwrap(first[0])
            let started = try await rollOut("v2", applicationID, world)
            try await world.app.flotilla.jobs.waitUntilFinished(started.jobID)
            let v2 = String(started.revision.prefix(12))
            let upgraded = await revisions()
            XCTAssertEqual(upgraded, [v2, v2, v2])
            // The upgrade log (issue 12 §7): who, to which revision, and each VM from and to which release.
            let entries = try await LogEntry.query(on: world.app.db).filter(\.$kind == LogKind.upgrade.rawValue).all()
            let start = try XCTUnwrap(entries.last { $0.action == "upgrade.start" })
            XCTAssertEqual(start.operatorName, "admin")
            XCTAssertTrue(start.details.contains("3 VMs to v2 (\(started.revision))"), start.details)
            let switches = entries.filter { $0.action == "upgrade.switch" && $0.details.contains("→ \(v2)-") }
            XCTAssertEqual(Set(switches.compactMap(\.vmName)), Set(vms.map(\.hostName)))
            XCTAssertTrue(
                switches.allSatisfy { $0.result == LogResult.success.rawValue && $0.details.hasPrefix("\(v1)-") },
                "\(switches.map(\.details))")
            XCTAssertTrue(
                entries.contains { $0.action == "upgrade.rollout" && $0.details.hasPrefix("\(started.revision) is live on 3 VMs") })
            let page = try await admin.request(.GET, "/upgrades").body.string
            for vm in vms {
                XCTAssertTrue(page.contains(#"name="vm" value="\#(vm.id)""#), "\(vm.hostName) can be selected")
                XCTAssertTrue(page.contains(#"name="row" value="\#(vm.id)""#), "\(vm.hostName) has its own buttons")
                XCTAssertTrue(page.contains("<td>\(vm.ip)</td>"), vm.ip)
            }
            XCTAssertTrue(page.contains(">\(v2)</td>") && page.contains("<td>\(v1)</td>"), "current, previous and target revisions")

            // A row's "Roll back" with the two other VMs selected: that VM alone goes back to v1.
            let rollback = try await admin.submit(
                "/upgrades/rollback",
                [
                    ("application", applicationID.uuidString), ("vm", vms[1].id.uuidString), ("vm", vms[2].id.uuidString),
                    ("row", vms[0].id.uuidString),
                ])
            let rollbackJob = try jobID(of: rollback)
            try await world.app.flotilla.jobs.waitUntilFinished(rollbackJob)
            let rolledBack = await revisions()
            XCTAssertEqual(rolledBack, [v1, v2, v2])

            // v2 is marked bad now, so the target is v1 again: the two VMs still on v2 drift.
            let drifting = try await admin.request(.GET, "/upgrades?drift=1").body.string
            XCTAssertFalse(drifting.contains("<td>\(vms[0].ip)</td>"), drifting)
            XCTAssertTrue(drifting.contains("<td>\(vms[1].ip)</td>") && drifting.contains("<td>\(vms[2].ip)</td>"), drifting)

            // A row's "Upgrade": that VM alone, with its role's application and the revision typed above.
            let upgrade = try await admin.submit(
                "/upgrades/start",
                [
                    ("application", UUID().uuidString), ("revision", "v2"), ("allowBad", "1"), ("canary", "1"), ("batchSize", "1"),
                    ("pauseSeconds", "0"), ("vm", vms[1].id.uuidString), ("row", vms[0].id.uuidString),
                ])
            let upgradeJob = try jobID(of: upgrade)
            try await world.app.flotilla.jobs.waitUntilFinished(upgradeJob)
            let rollout = try await UpgradeRollout.query(on: world.app.db).filter(\.$jobID == upgradeJob).first()
            XCTAssertEqual(rollout?.state, .succeeded, rollout?.reason ?? "")
            let rolloutID = try XCTUnwrap(rollout?.id)
            let rows = try await UpgradeRolloutVM.query(on: world.app.db).filter(\.$rolloutID == rolloutID).all()
            XCTAssertEqual(rows.map(\.vmID), [vms[0].id])
            let final = await revisions()
            XCTAssertEqual(final, [v2, v2, v2])
        }
    }

    /// Batches wait the plan's pause after their gate, the last one does not (issue 12 §4).
    func testBatchesPauseBetweenThemselves() async throws {
        try await withFleet(3) { world, _, applicationID, _ in
            let started = try await world.app.upgradeRollouts.start(
                RolloutRequest(
                    applicationID: applicationID, environmentID: world.environmentID, revision: "v2", trigger: .user(Self.admin),
                    plan: RolloutPlan(canary: "1", batchSize: "1", pauseSeconds: 1)))
            try await world.app.flotilla.jobs.waitUntilFinished(started.jobID)
            try await assertRollout(started, is: .succeeded, world.app)
            let steps = try await world.job(started.jobID).steps ?? []
            let gates = steps.filter { $0.kind == ReleaseGateStep.name }.sorted { $0.position < $1.position }
            XCTAssertEqual(gates.count, 3)
            XCTAssertEqual(gates.map { $0.log.contains("pausing 1 s before the next batch") }, [true, true, false])
            for (gate, nextSwitch) in zip(
                gates.dropLast(),
                [1, 2].map { batch in steps.first { $0.kind == ReleaseSwitchStep.name && $0.title.hasPrefix("batch \(batch):") } })
            {
                let finished = try XCTUnwrap(gate.finishedAt)
                let next = try XCTUnwrap(nextSwitch?.startedAt, "no switch of the next batch")
                XCTAssertGreaterThanOrEqual(next, finished, "the next batch waits for the pause")
            }
        }
    }

    /// The "services" gate (issue 12 §1: every watched service healthy for 30 s) judges the new
    /// release: the monitor agent's heartbeat from before the switch, however healthy, passes no
    /// gate. It once did, and the canary switched and passed at once.
    func testTheServicesGateIgnoresHeartbeatsFromBeforeTheSwitch() async throws {
        try await withFleet(2) { world, guests, applicationID, vms in
            let application = try await UpgradeApplication.find(applicationID, on: world.app.db)
            let found = try XCTUnwrap(application)
            found.healthKind = "services"
            found.healthTarget = ""
            found.healthTimeoutSeconds = 2
            try await found.save(on: world.app.db)
            let longRunning = [
                AgentReport.ServiceState(
                    name: "app", state: "running", restarts: 0, failures: 0, attempts: 0, since: Date().timeIntervalSince1970 - 3600)
            ]
            for vm in vms {
                let status = AgentStatus()
                status.vmID = vm.id
                status.lastHeartbeatAt = Date()
                status.agentVersion = "2"
                status.servicesJSON = String(decoding: try JSONEncoder().encode(longRunning), as: UTF8.self)
                status.queuedEvents = 0
                try await status.create(on: world.app.db)
            }
            let before = await currents(guests, vms)
            let started = try await rollOut("v2", applicationID, world)
            try await world.app.flotilla.jobs.waitUntilFinished(started.jobID)
            try await assertRollout(started, is: .halted, world.app)
            let after = await currents(guests, vms)
            XCTAssertEqual(after, before, "the canary is back on v1 and nothing else switched")
        }
    }

    /// Rollouts talk to guests and the database only: vSphere (vcsim) down or restarting for the
    /// whole rollout neither slows nor stops it.
    func testARolloutNeedsNoVSphere() async throws {
        try await withFleet(2) { world, guests, applicationID, vms in
            await world.vsphere.setEndpointDelay(.seconds(3600))
            let callsBefore = await world.vsphere.calls.count
            let second = try await rollOut("v2", applicationID, world)
            try await world.app.flotilla.jobs.waitUntilFinished(second.jobID, timeout: .seconds(30))
            try await assertRollout(second, is: .succeeded, world.app)
            let callsAfter = await world.vsphere.calls.count
            XCTAssertEqual(callsAfter, callsBefore)
            let now = await currents(guests, vms)
            XCTAssertTrue(now.allSatisfy { $0?.hasPrefix(String(second.revision.prefix(12))) == true }, "\(now)")
            await world.vsphere.setEndpointDelay(.zero)
        }
    }

    private func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }
}
