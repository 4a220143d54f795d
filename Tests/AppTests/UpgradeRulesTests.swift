import Fluent
import XCTVapor

@testable import App

/// The upgrade rules without guests: plans in batches, applications validated and their
/// credentials never shown back, hostile revisions refused before anything is recorded, the
/// page and its permission.
final class UpgradeRulesTests: XCTestCase {
    func testPlansPutTheCanaryFirstThenBatchesOfTheGivenSize() throws {
        let vms = Array(1...10)
        XCTAssertEqual(
            try RolloutPlan(canary: "1", batchSize: "25%", pauseSeconds: 0).batches(vms), [[1], [2, 3], [4, 5], [6, 7], [8, 9], [10]])
        XCTAssertEqual(
            try RolloutPlan(canary: "20%", batchSize: "4", pauseSeconds: 0).batches(vms), [[1, 2], [3, 4, 5, 6], [7, 8, 9, 10]])
        XCTAssertEqual(try RolloutPlan(canary: "1", batchSize: "100%", pauseSeconds: 0).batches([7]), [[7]])
        for bad in [RolloutPlan(canary: "0"), RolloutPlan(batchSize: "150%"), RolloutPlan(batchSize: "x"), RolloutPlan(pauseSeconds: -1)] {
            XCTAssertThrowsError(try bad.batches(vms))
        }
    }

    func testReleaseNamesCarryTheRevisionAndSortByTime() {
        let time = Date(timeIntervalSince1970: 1_764_771_900)
        let name = GuestReleases.releaseName(revision: String(repeating: "ab", count: 20), kind: .git, at: time)
        XCTAssertEqual(name, "abababababab-20251203T142500000Z")
        XCTAssertEqual(GuestReleases.revision(ofRelease: name), "abababababab")
        XCTAssertEqual(GuestReleases.releaseName(revision: "1234", kind: .svn, at: time), "1234-20251203T142500000Z")
    }

    /// Two rollouts within one second (a person right after a hook) once made releases whose
    /// times were equal, and a rollback then found no release older than the current one.
    func testReleasesOfTheSameSecondStillSortByTime() {
        let time = Date(timeIntervalSince1970: 1_764_771_900.2)
        let earlier = GuestReleases.releaseName(revision: "41", kind: .svn, at: time)
        let later = GuestReleases.releaseName(revision: "42", kind: .svn, at: time.addingTimeInterval(0.3))
        let timePart = { (name: String) in name.split(separator: "-").last.map(String.init) ?? "" }
        XCTAssertLessThan(timePart(earlier), timePart(later))
    }

    /// "Every watched service healthy for 30 s" counts from the switch, by a fresh heartbeat.
    func testTheServicesGateWantsThirtySteadySecondsAfterTheSwitch() throws {
        let switchedBy = Date(timeIntervalSince1970: 1_764_771_900)
        func status(
            heartbeatAfterSwitch: TimeInterval, runningSinceSwitch since: TimeInterval, state: String = "running"
        ) throws
            -> AgentStatus
        {
            let status = AgentStatus()
            status.lastHeartbeatAt = switchedBy.addingTimeInterval(heartbeatAfterSwitch)
            let service = AgentReport.ServiceState(
                name: "app", state: state, restarts: 0, failures: 0, attempts: 0, since: switchedBy.timeIntervalSince1970 + since)
            status.servicesJSON = String(decoding: try JSONEncoder().encode([service]), as: UTF8.self)
            return status
        }
        func steady(_ status: AgentStatus, at secondsAfterSwitch: TimeInterval) -> Bool {
            HealthCheck.servicesSteady(status, switchedBy: switchedBy, now: switchedBy.addingTimeInterval(secondsAfterSwitch))
        }
        // Restarted by the switch, running 30 s by a heartbeat 31 s after it: steady.
        XCTAssertTrue(steady(try status(heartbeatAfterSwitch: 31, runningSinceSwitch: 1), at: 33))
        // Not restarted by the switch: steady once a heartbeat 30 s after the switch says so.
        XCTAssertTrue(steady(try status(heartbeatAfterSwitch: 30, runningSinceSwitch: -3600), at: 30))
        XCTAssertFalse(steady(try status(heartbeatAfterSwitch: 29, runningSinceSwitch: -3600), at: 30), "too soon after the switch")
        XCTAssertFalse(steady(try status(heartbeatAfterSwitch: -1, runningSinceSwitch: -3600), at: 5), "from before the switch")
        XCTAssertFalse(steady(try status(heartbeatAfterSwitch: 35, runningSinceSwitch: 10), at: 36), "running only 25 s")
        XCTAssertFalse(steady(try status(heartbeatAfterSwitch: 31, runningSinceSwitch: 1), at: 42), "heartbeat 11 s old")
        XCTAssertFalse(steady(try status(heartbeatAfterSwitch: 31, runningSinceSwitch: 1, state: "down"), at: 32))
        let silent = try status(heartbeatAfterSwitch: 31, runningSinceSwitch: 1)
        silent.silentSince = switchedBy.addingTimeInterval(32)
        XCTAssertFalse(steady(silent, at: 33))
        let none = try status(heartbeatAfterSwitch: 31, runningSinceSwitch: 1)
        none.servicesJSON = "[]"
        XCTAssertFalse(steady(none, at: 32), "no watched service")
    }

    func testApplicationsAreValidatedAndCredentialsNeverShownBack() async throws {
        try await InMemoryWorld.run { world in
            let roles = try world.admin.decode([API.RoleBody].self, try await world.admin.request(.GET, "/api/v1/roles"))
            let web = try XCTUnwrap(roles.first { $0.name == "web" })
            var input = UpgradeApplications.Input(
                repositoryKind: "git", repositoryURL: "https://git.example/app.git", branch: "main", username: "deploy",
                password: "Token-Secret-77", deployDirectory: "/srv/app", buildCommand: nil, restartCommand: "systemctl restart app",
                healthKind: "http", healthTarget: "http://127.0.0.1:8000/health", healthTimeoutSeconds: nil, releasesKept: nil)
            let saved = try await world.admin.request(.PUT, "/api/v1/roles/\(web.id)/application", json: input)
            XCTAssertEqual(saved.status, .ok, saved.body.string)
            XCTAssertFalse(saved.body.string.contains("Token-Secret-77"))
            let summary = try world.admin.decode(UpgradeApplications.Summary.self, saved)
            XCTAssertTrue(summary.hasCredentials)
            XCTAssertEqual(summary.releasesKept, 5)
            let stored = try await UpgradeApplication.query(on: world.app.db).first()
            XCTAssertFalse(stored?.credentialsSealed?.contains("Token-Secret-77") ?? true)
            let list = try await world.admin.request(.GET, "/api/v1/applications")
            XCTAssertFalse(list.body.string.contains("Token-Secret-77"))
            let page = try await world.admin.request(.GET, "/settings/roles/\(web.id)/application")
            XCTAssertEqual(page.status, .ok)
            XCTAssertFalse(page.body.string.contains("Token-Secret-77"))

            // Each bad field is a clear error and changes nothing.
            let bad: [(String, (inout UpgradeApplications.Input) -> Void)] = [
                ("file URL", { $0.repositoryURL = "file:///etc" }),
                ("ext transport", { $0.repositoryURL = "ext::sh -c touch% /tmp/x" }),
                ("relative deploy directory", { $0.deployDirectory = "srv/app" }),
                ("escaping deploy directory", { $0.deployDirectory = "/srv/../etc" }),
                ("system directory", { $0.deployDirectory = "/etc" }),
                ("hostile branch", { $0.branch = "--upload-pack=touch /tmp/x" }),
                ("multi-line restart", { $0.restartCommand = "true\nreboot" }),
                ("health URL", { $0.healthTarget = "ftp://x" }),
                ("kept", { $0.releasesKept = 1 }),
                (
                    "svn branch",
                    {
                        $0.repositoryKind = "svn"
                        $0.repositoryURL = "svn://svn.example/app"
                    }
                ),
            ]
            for (what, change) in bad {
                var changed = input
                change(&changed)
                let answer = try await world.admin.request(.PUT, "/api/v1/roles/\(web.id)/application", json: changed)
                XCTAssertEqual(answer.status, .badRequest, "\(what): \(answer.body.string)")
            }
            let unchanged = try await UpgradeApplication.query(on: world.app.db).first()
            XCTAssertEqual(unchanged?.repositoryURL, "https://git.example/app.git")
            XCTAssertEqual(unchanged?.deployDirectory, "/srv/app")
            input.username = nil
            input.password = nil
            let kept = try world.admin.decode(
                UpgradeApplications.Summary.self, try await world.admin.request(.PUT, "/api/v1/roles/\(web.id)/application", json: input))
            XCTAssertTrue(kept.hasCredentials, "absent credentials keep the stored ones")
        }
    }

    func testHostileRevisionsAreRefusedBeforeAnythingIsRecorded() async throws {
        try await InMemoryWorld.run { world in
            let roles = try world.admin.decode([API.RoleBody].self, try await world.admin.request(.GET, "/api/v1/roles"))
            let web = try XCTUnwrap(roles.first { $0.name == "web" })
            let input = UpgradeApplications.Input(
                repositoryKind: "git", repositoryURL: "git://127.0.0.1:9/app.git", branch: nil, username: nil, password: nil,
                deployDirectory: "/srv/app", buildCommand: nil, restartCommand: "true", healthKind: "command", healthTarget: "true",
                healthTimeoutSeconds: nil, releasesKept: nil)
            let summary = try world.admin.decode(
                UpgradeApplications.Summary.self, try await world.admin.request(.PUT, "/api/v1/roles/\(web.id)/application", json: input))
            let marker = "/tmp/flotilla-hostile-\(UUID().uuidString)"
            for revision in ["--upload-pack=touch \(marker)", "HEAD; rm -rf /", "../../x", "a\nb", ""] {
                let answer = try await world.admin.request(
                    .POST, "/api/v1/upgrades",
                    json: UpgradesAPI.StartInput(applicationID: summary.id, environmentID: world.environmentID, revision: revision))
                XCTAssertEqual(answer.status, .badRequest, "\(revision): \(answer.body.string)")
                XCTAssertTrue(answer.body.string.contains("Invalid revision"), answer.body.string)
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: marker))
            let rollouts = try await UpgradeRollout.query(on: world.app.db).count()
            let jobs = try await Job.query(on: world.app.db).count()
            XCTAssertEqual(rollouts, 0)
            XCTAssertEqual(jobs, 0)
            let page = try await world.admin.request(.GET, "/upgrades")
            XCTAssertEqual(page.status, .ok)
            XCTAssertTrue(page.body.string.contains("Recent rollouts"))
        }
    }
}
