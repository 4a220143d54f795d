import Fluent
import Foundation
import Lab
import RemoteShell
import XCTVapor

@testable import App

/// Staging in the lab (issue 13 §4 and hostile values; root, vcsim and guest namespaces; run
/// under the lab lock): when one VM's file does not validate, no VM keeps staged copies or the
/// folders staging made for them; a folder that is a symbolic link out of the profile's folders
/// (`/opt/evil` → `/etc`) is refused and nothing is written behind it; a successful apply leaves
/// no staging folder either. With the dependency's server stopped, the check through the API
/// names it and the layer, and Configure is refused.
final class ServiceConfigurationStagingLabTests: XCTestCase {
    static let lab = LabConfiguration(
        stateDirectory: "/var/lib/flotilla-lab-stagingtest", roles: ["redis", "web", "daemon"], preCreatedVMs: 3,
        pollInterval: .milliseconds(250))

    private static func profile(web: String, daemon: String) -> String {
        """
        name: staging
        dependencies:
          redis: { checks: [{ kind: redis }] }
        targets:
          web:
            files:
              - path: \(web)
                owner: root
                mode: "0640"
                validate: [python3, -m, py_compile, "{file}"]
                template: |
                  REDIS = "{{dependencies.redis.address}}"
          daemon:
            files:
              - path: \(daemon)
                owner: root
                mode: "0640"
                validate: [python3, -m, py_compile, "{file}"]
                template: |
                  REDIS = ("{{dependencies.redis.address}}"

        """
    }

    func testAFailedStageLeavesNothingStagedAndSymbolicLinksAreRefused() async throws {
        try await Self.lab.withApp { app, vcsim in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            let adopted = try await admin.adoptLab(Self.lab, vcsim: vcsim, roles: ["redis", "web", "daemon"])
            XCTAssertEqual(adopted, 3)
            var byRole: [String: VM] = [:]
            for vm in try await VM.query(on: app.db).with(\.$role).all() { byRole[vm.role.name] = vm }
            let web = try XCTUnwrap(byRole["web"])
            let daemon = try XCTUnwrap(byRole["daemon"])
            let redis = try XCTUnwrap(byRole["redis"])
            let guests = ServiceConfigurationLabTests.Guests(app: app)
            let targets = [try web.requireID(), try daemon.requireID()]

            // web's file is valid in folders that do not exist yet; daemon's does not compile.
            let added = try await admin.request(
                .POST, "/api/v1/service-profiles",
                json: API.ProfileInput(
                    document: Self.profile(web: "/opt/staging-test/new/settings.py", daemon: "/opt/staging-test/conf.py")))
            XCTAssertEqual(added.status, .created, added.body.string)
            let profile = try admin.decode(ServiceProfiles.Summary.self, added).id
            let failed = try await configure(
                admin, app: app, profile: profile, environment: web.$environment.id, redis: try redis.requireID(), targets: targets)
            XCTAssertEqual(failed.status, "failed")
            let log = failed.steps?.map(\.log).joined(separator: "\n") ?? ""
            XCTAssertTrue(log.contains("does not validate"), log)
            for vm in [web, daemon] {
                let left = try await guests.run(
                    RemoteShell.Command.script("[ -e /opt/staging-test ] && find /opt/staging-test || echo gone"), on: vm)
                XCTAssertEqual(left, "gone\n", "\(vm.hostName) keeps what staging made: \(left)\n\(log)")
            }

            // A folder on the guest that leads out of /opt: refused, nothing lands in /etc.
            _ = try await guests.run(RemoteShell.Command("ln", "-sfn", "/etc", "/opt/evil"), on: web)
            let edited = try await admin.request(
                .PATCH, "/api/v1/service-profiles/\(profile)",
                json: API.ProfileInput(
                    document: Self.profile(web: "/opt/evil/flotilla-staging.py", daemon: "/opt/staging-test/conf.py")
                        .replacingOccurrences(of: "REDIS = (", with: "REDIS = ")))
            XCTAssertEqual(edited.status, .ok, edited.body.string)
            let refused = try await configure(
                admin, app: app, profile: profile, environment: web.$environment.id, redis: try redis.requireID(), targets: targets)
            XCTAssertEqual(refused.status, "failed")
            let refusal = refused.steps?.map(\.log).joined(separator: "\n") ?? ""
            XCTAssertTrue(refusal.contains("/opt/evil is reached through a symbolic link"), refusal)
            let etc = try await guests.run(
                RemoteShell.Command.script("ls -a /etc | grep -E 'flotilla-staging|flotilla-staged|flotilla-history' || echo none"), on: web
            )
            XCTAssertEqual(etc, "none\n")
            let daemonLeft = try await guests.run(
                RemoteShell.Command.script("[ -e /opt/staging-test ] && find /opt/staging-test || echo gone"), on: daemon)
            XCTAssertEqual(daemonLeft, "gone\n", "daemon's valid staged file is removed too: \(daemonLeft)\n\(refusal)")

            // Valid everywhere: the files are in place and no staging folder stays behind (py_compile's cache included).
            let valid = try await admin.request(
                .PATCH, "/api/v1/service-profiles/\(profile)",
                json: API.ProfileInput(
                    document: Self.profile(web: "/opt/staging-test/new/settings.py", daemon: "/opt/staging-test/conf.py")
                        .replacingOccurrences(of: "REDIS = (", with: "REDIS = ")))
            XCTAssertEqual(valid.status, .ok, valid.body.string)
            let applied = try await configure(
                admin, app: app, profile: profile, environment: web.$environment.id, redis: try redis.requireID(), targets: targets)
            XCTAssertEqual(applied.status, "succeeded", applied.steps?.map(\.log).joined(separator: "\n") ?? "")
            for vm in [web, daemon] {
                let staged = try await guests.run(
                    RemoteShell.Command.script("find /opt/staging-test -name '.flotilla-staged*'; ls -R /opt/staging-test"), on: vm)
                XCTAssertFalse(staged.contains(".flotilla-staged"), "\(vm.hostName): \(staged)")
                XCTAssertTrue(staged.contains(vm.id == web.id ? "settings.py" : "conf.py"), "\(vm.hostName): \(staged)")
            }

            try await assertStoppedDependencyRefusesConfigure(
                admin, app: app, profile: profile, environment: web.$environment.id, redis: redis, targets: targets)
        }
    }

    /// The dependency's server stopped: the check through the API names it and its layer, and
    /// Configure is refused (no job).
    private func assertStoppedDependencyRefusesConfigure(
        _ admin: TestClient, app: Application, profile: UUID, environment: UUID, redis: VM, targets: [UUID]
    ) async throws {
        let guests = ServiceConfigurationLabTests.Guests(app: app)
        _ = try await guests.run(RemoteShell.Command("pkill", "-x", "redis-server"), on: redis)
        // Redis answers for up to a tenth of a second after SIGTERM: check once it is gone.
        let gone = try await guests.run(
            RemoteShell.Command.script(
                "for i in $(seq 100); do pgrep -x redis-server >/dev/null || { echo gone; exit 0; }; sleep 0.1; done"),
            on: redis)
        XCTAssertTrue(gone.contains("gone"), "redis-server still runs 10 s after SIGTERM")
        let started = try await admin.request(
            .POST, "/api/v1/configuration-runs",
            json: API.NewConfigurationRun(profileID: profile, environmentID: environment, dependencies: ["redis": try redis.requireID()]))
        let run = try admin.decode(ConfigurationWizard.RunBody.self, started).id
        let report = try admin.decode(
            DependencyCheckReport.self,
            try await admin.request(.POST, "/api/v1/configuration-runs/\(run)/check", json: API.ConfigurationTargets(targets: targets)))
        XCTAssertFalse(report.passed)
        XCTAssertEqual(report.results.count, 3, "from the platform and both targets")
        XCTAssertTrue(report.results.allSatisfy { $0.layer == .serviceNotRunning }, "\(report.results)")
        XCTAssertTrue(
            report.failures.allSatisfy { $0.hasPrefix("redis on \(redis.hostName)") && $0.contains("service not running") },
            report.failures.joined(separator: "\n"))
        let jobsBefore = try await Job.query(on: app.db).count()
        let refused = try await admin.request(
            .POST, "/api/v1/configuration-runs/\(run)/configure", json: API.ConfigurationTargets(targets: targets))
        XCTAssertEqual(refused.status, .conflict, refused.body.string)
        XCTAssertTrue(refused.body.string.contains("every dependency check passed"), refused.body.string)
        let jobsAfter = try await Job.query(on: app.db).count()
        XCTAssertEqual(jobsAfter, jobsBefore, "no job was started")
    }

    /// A run checked from `targets`, then configured; answers the finished job.
    private func configure(
        _ admin: TestClient, app: Application, profile: UUID, environment: UUID, redis: UUID, targets: [UUID]
    ) async throws -> API.JobBody {
        let started = try await admin.request(
            .POST, "/api/v1/configuration-runs",
            json: API.NewConfigurationRun(profileID: profile, environmentID: environment, dependencies: ["redis": redis]))
        XCTAssertEqual(started.status, .created, started.body.string)
        let run = try admin.decode(ConfigurationWizard.RunBody.self, started).id
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let report = try admin.decode(
                DependencyCheckReport.self,
                try await admin.request(
                    .POST, "/api/v1/configuration-runs/\(run)/check", json: API.ConfigurationTargets(targets: targets)))
            if report.passed { break }
            guard ContinuousClock.now < deadline else {
                throw ServiceConfigurationLabTests.GuestCommandFailed(description: "checks never passed: \(report.failures)")
            }
            try await Task.sleep(for: .seconds(1))
        }
        let answer = try await admin.request(
            .POST, "/api/v1/configuration-runs/\(run)/configure", json: API.ConfigurationTargets(targets: targets))
        XCTAssertEqual(answer.status, .accepted, answer.body.string)
        let jobID = try admin.decode(API.JobReference.self, answer).jobID
        try await app.flotilla.jobs.waitUntilFinished(jobID)
        return try admin.decode(API.JobBody.self, try await admin.request(.GET, "/api/v1/jobs/\(jobID)"))
    }
}
