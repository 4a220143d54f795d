import Fluent
import Foundation
import Lab
import RemoteShell
import XCTVapor

@testable import App

/// The spider profile end to end in the lab (issue 13 §4, root, vcsim and guest namespaces; run
/// under the lab lock): an environment deployed from a blueprint, then checked, previewed and
/// configured through the API; the web and daemon VMs' files hold the chosen dependency
/// addresses and their services were restarted and run.
/// A profile version whose settings.py does not compile replaces nothing on any VM; one that
/// compiles but stops its service gets the previous file back within 30 s with the service
/// running again. The drift check then notices a file edited on a guest.
final class ServiceConfigurationLabTests: XCTestCase {
    static let dependencyRoles = ["mysql", "redis", "rabbitmq", "mongo"]
    static let targetRoles = ["web", "daemon"]
    static let lab = LabConfiguration(
        stateDirectory: "/var/lib/flotilla-lab-configtest", roles: dependencyRoles + targetRoles, pollInterval: .milliseconds(250))
    static let secrets = ["mysql_password": "flotilla", "rabbitmq_password": "flotilla"]
    /// The environment the profile wires: one VM of each role, created from this blueprint.
    static let blueprint = """
        name: spider-lab
        roles: { mysql: 1, redis: 1, rabbitmq: 1, mongo: 1, web: 1, daemon: 1 }
        network: { range: 10.77.60.10-10.77.60.20, netmask: 255.255.0.0, gateway: 10.77.0.1, dns: [10.77.0.1] }
        password: shared
        """

    func testSpiderProfileIsCheckedAppliedAndRevertedInTheLab() async throws {
        try await Self.lab.withApp { app, vcsim in try await exercise(app, vcsim: vcsim) }
    }

    private func exercise(_ app: Application, vcsim: VcsimProcess) async throws {
        let admin = try TestClient(app)
        try await admin.signIn("admin", TestApp.adminPassword)
        // The lab's connection and a role per template (the lab pre-creates no VM to adopt).
        let adopted = try await admin.adoptLab(Self.lab, vcsim: vcsim, roles: Self.dependencyRoles + Self.targetRoles)
        XCTAssertEqual(adopted, 0)
        let deployed = try await admin.request(
            .POST, "/api/v1/blueprints/deploy",
            json: Deployments.Input(blueprint: Self.blueprint, password: "Spider-pass-1", passwordConfirmation: "Spider-pass-1"))
        XCTAssertEqual(deployed.status, .accepted, deployed.body.string)
        let deployment = try admin.decode(Deployments.Deployment.self, deployed)
        try await app.flotilla.jobs.waitUntilFinished(deployment.jobID)
        let deployJob = try admin.decode(API.JobBody.self, try await admin.request(.GET, "/api/v1/jobs/\(deployment.jobID)"))
        XCTAssertEqual(deployJob.status, "succeeded", deployJob.steps?.map(\.log).joined(separator: "\n") ?? "")
        let environmentID = deployment.environmentID
        var byRole: [String: VM] = [:]
        for vm in try await VM.query(on: app.db).filter(\.$environment.$id == environmentID).with(\.$role).all() {
            byRole[vm.role.name] = vm
        }
        XCTAssertEqual(byRole.count, 6, "one VM of each role from the blueprint")
        let web = try XCTUnwrap(byRole["web"])
        let daemon = try XCTUnwrap(byRole["daemon"])
        let guests = Guests(app: app)
        for (vm, service, directory) in [(web, "spider-web", "/opt/spider/web"), (daemon, "spider-daemon", "/opt/spider/daemon")] {
            try await guests.installSpiderService(
                service, settings: directory + (service == "spider-web" ? "/settings.py" : "/conf.py"), on: vm)
        }

        // The profile, as shipped, with the lab's secret values.
        let text = try String(
            contentsOfFile: ServiceProfile.examplesDirectory(in: try ResourceDirectory.find(configured: nil)) + "/spider.yaml",
            encoding: .utf8)
        let added = try await admin.request(
            .POST, "/api/v1/service-profiles", json: API.ProfileInput(document: text, secrets: Self.secrets))
        XCTAssertEqual(added.status, .created, added.body.string)
        let profile = try admin.decode(ServiceProfiles.Summary.self, added)
        let dependencies = Dictionary(uniqueKeysWithValues: try Self.dependencyRoles.map { ($0, try XCTUnwrap(byRole[$0]?.id)) })
        let targets = [try web.requireID(), try daemon.requireID()]

        let beforeWeb = try await guests.pid("spider-web", on: web)
        let beforeDaemon = try await guests.pid("spider-daemon", on: daemon)
        let run = try await passedRun(admin, profile: profile.id, environment: environmentID, dependencies: dependencies, targets: targets)

        let previews = try admin.decode(
            [ConfigurationWizard.VMPreview].self,
            try await admin.request(.POST, "/api/v1/configuration-runs/\(run)/preview", json: API.ConfigurationTargets(targets: targets)))
        XCTAssertEqual(previews.map(\.vm.hostName), [web.hostName, daemon.hostName])
        let webDiff = try XCTUnwrap(previews.first?.files.first { $0.path == "/opt/spider/web/settings.py" }?.diff)
        XCTAssertTrue(webDiff.contains("+        \"HOST\": \"\(byRole["mysql"]!.ip)\""), webDiff)
        XCTAssertTrue(webDiff.contains(ProfileRenderer.secretMask), webDiff)
        XCTAssertFalse(webDiff.contains("\"PASSWORD\": \"flotilla\""), webDiff)

        let applyStarted = ContinuousClock.now
        let job = try await configure(admin, app: app, run: run, targets: targets)
        print("apply to 2 VMs (stage, validate, replace, restart, health gate): \(ContinuousClock.now - applyStarted)")
        XCTAssertEqual(job.status, "succeeded", job.steps?.map(\.log).joined(separator: "\n") ?? "")
        let webSettings = try await guests.read("/opt/spider/web/settings.py", on: web)
        XCTAssertTrue(webSettings.contains("\"HOST\": \"\(byRole["mysql"]!.ip)\""), webSettings)
        XCTAssertTrue(webSettings.contains("redis://\(byRole["redis"]!.ip):6379/0"), webSettings)
        let daemonConf = try await guests.read("/opt/spider/daemon/conf.py", on: daemon)
        XCTAssertTrue(daemonConf.contains("mongodb://\(byRole["mongo"]!.ip):27017/spider"), daemonConf)
        XCTAssertTrue(daemonConf.contains("@\(byRole["rabbitmq"]!.ip):5672//"), daemonConf)
        let afterWeb = try await guests.pid("spider-web", on: web)
        let afterDaemon = try await guests.pid("spider-daemon", on: daemon)
        XCTAssertNotEqual(afterWeb, beforeWeb, "spider-web was restarted")
        XCTAssertNotEqual(afterDaemon, beforeDaemon, "spider-daemon was restarted")
        XCTAssertNotNil(afterWeb)
        XCTAssertNotNil(afterDaemon)

        // The same again: nothing changed, nothing restarted.
        let again = try await configure(admin, app: app, run: run, targets: targets)
        XCTAssertEqual(again.status, "succeeded")
        let unchangedPID = try await guests.pid("spider-web", on: web)
        XCTAssertEqual(unchangedPID, afterWeb, "an unchanged file restarts nothing")

        // A settings.py that does not compile: the job fails and no VM's file is replaced.
        let good = webSettings
        let goodDaemon = daemonConf
        let broken = text.replacingOccurrences(of: "          REDIS_URL = ", with: "          REDIS_URL = (")
        XCTAssertNotEqual(broken, text)
        try await edit(admin, profile: profile.id, document: broken)
        let brokenRun = try await passedRun(
            admin, profile: profile.id, environment: environmentID, dependencies: dependencies, targets: targets)
        let failed = try await configure(admin, app: app, run: brokenRun, targets: targets)
        XCTAssertEqual(failed.status, "failed")
        XCTAssertTrue(failed.steps?.contains { ($0.log).contains("does not validate") } ?? false, "\(failed.steps?.map(\.log) ?? [])")
        let webAfterBroken = try await guests.read("/opt/spider/web/settings.py", on: web)
        let daemonAfterBroken = try await guests.read("/opt/spider/daemon/conf.py", on: daemon)
        XCTAssertEqual(webAfterBroken, good)
        XCTAssertEqual(daemonAfterBroken, goodDaemon, "nothing replaced on the VM whose files were valid either")

        // Compiles, but the service stops at start: the previous file is back within 30 s and runs.
        let stopping = text.replacingOccurrences(
            of: "          LOG_LEVEL = \"{{variables.log_level}}\"\n      - path: /etc/supervisor/conf.d/spider-web.conf",
            with:
                "          LOG_LEVEL = \"{{variables.log_level}}\"\n          raise SystemExit(\"refusing to start\")\n      - path: /etc/supervisor/conf.d/spider-web.conf"
        )
        XCTAssertNotEqual(stopping, text)
        try await edit(admin, profile: profile.id, document: stopping)
        let stoppingRun = try await passedRun(
            admin, profile: profile.id, environment: environmentID, dependencies: dependencies, targets: [targets[0]])
        let started = ContinuousClock.now
        let reverted = try await configure(admin, app: app, run: stoppingRun, targets: [targets[0]])
        let took = ContinuousClock.now - started
        XCTAssertEqual(reverted.status, "failed")
        let message = reverted.steps?.map(\.log).joined(separator: "\n") ?? ""
        XCTAssertTrue(message.contains("is back and the services run again"), message)
        XCTAssertLessThan(took, .seconds(30), "previous file back and service running within 30 s")
        let webAfterRevert = try await guests.read("/opt/spider/web/settings.py", on: web)
        XCTAssertEqual(webAfterRevert, good)
        let runningPID = try await guests.pid("spider-web", on: web)
        XCTAssertNotNil(runningPID, "spider-web runs again")
        print("revert of a service that failed to start: \(took)")
        // The history keeps the earlier versions beside the file.
        let history = try await guests.run(RemoteShell.Command("ls", "/opt/spider/web/.flotilla-history"), on: web)
        XCTAssertTrue(history.contains("settings.py."), history)

        // Drift: a local edit on the daemon is noticed and audited.
        _ = try await guests.run(RemoteShell.Command.script(##"echo "# local edit" >> /opt/spider/daemon/conf.py"##), on: daemon)
        let drift = try admin.decode(
            [ConfigurationDrift.FileState].self,
            try await admin.request(.POST, "/api/v1/configuration-drift", json: API.DriftRequest(environmentID: environmentID)))
        XCTAssertEqual(drift.first { $0.path == "/opt/spider/daemon/conf.py" }?.state, "changed")
        XCTAssertEqual(drift.first { $0.path == "/opt/spider/web/settings.py" }?.state, "same")
        let audited = try await LogEntry.query(on: app.db).filter(\.$action == "config.drift").count()
        XCTAssertEqual(audited, 1)
        let configured = try await LogEntry.query(on: app.db).filter(\.$action == "config.configure").all()
        XCTAssertFalse(configured.isEmpty)
        XCTAssertFalse(configured.contains { $0.details.contains("\"PASSWORD\": \"flotilla\"") }, "no secret in the audit log")
    }

    /// A run whose check passed (RabbitMQ may need some seconds after boot).
    private func passedRun(
        _ admin: TestClient, profile: UUID, environment: UUID, dependencies: [String: UUID], targets: [UUID]
    ) async throws
        -> UUID
    {
        let started = try await admin.request(
            .POST, "/api/v1/configuration-runs",
            json: API.NewConfigurationRun(profileID: profile, environmentID: environment, dependencies: dependencies))
        XCTAssertEqual(started.status, .created, started.body.string)
        let run = try admin.decode(ConfigurationWizard.RunBody.self, started).id
        let deadline = ContinuousClock.now + .seconds(90)
        while true {
            let answer = try await admin.request(
                .POST, "/api/v1/configuration-runs/\(run)/check", json: API.ConfigurationTargets(targets: targets))
            XCTAssertEqual(answer.status, .ok, answer.body.string)
            let report = try admin.decode(DependencyCheckReport.self, answer)
            if report.passed {
                print("check verdict (\(report.results.count) results): \(report.elapsedMilliseconds) ms")
                return run
            }
            guard ContinuousClock.now < deadline else {
                XCTFail(report.failures.joined(separator: "\n"))
                return run
            }
            try await Task.sleep(for: .seconds(1))
        }
    }

    private func configure(_ admin: TestClient, app: Application, run: UUID, targets: [UUID]) async throws -> API.JobBody {
        let answer = try await admin.request(
            .POST, "/api/v1/configuration-runs/\(run)/configure", json: API.ConfigurationTargets(targets: targets))
        XCTAssertEqual(answer.status, .accepted, answer.body.string)
        let jobID = try admin.decode(API.JobReference.self, answer).jobID
        try await app.flotilla.jobs.waitUntilFinished(jobID)
        return try admin.decode(API.JobBody.self, try await admin.request(.GET, "/api/v1/jobs/\(jobID)"))
    }

    private func edit(_ admin: TestClient, profile: UUID, document: String) async throws {
        let answer = try await admin.request(.PATCH, "/api/v1/service-profiles/\(profile)", json: API.ProfileInput(document: document))
        XCTAssertEqual(answer.status, .ok, answer.body.string)
    }

    /// Commands on the lab guests over the platform's key.
    struct Guests {
        let app: Application

        func run(_ command: RemoteShell.Command, on vm: VM) async throws -> String {
            let target = try await GuestLogin(keys: PlatformKeys(database: app.db, secrets: app.flotilla.secrets)).target(
                for: vm, user: "root")
            let result = try await app.flotilla.shell.run(command, on: target, timeout: .seconds(30))
            guard result.succeeded else { throw GuestCommandFailed(description: "\(command): \(result.errorOutput)") }
            return result.output
        }

        func read(_ path: String, on vm: VM) async throws -> String {
            try await run(RemoteShell.Command("cat", path), on: vm)
        }

        /// The service's process ID, or nil when it does not run.
        func pid(_ service: String, on vm: VM) async throws -> String? {
            let output = try await run(
                RemoteShell.Command.script(
                    #"p=$(cat "/run/$1.pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null && echo "$p" || true"#, arguments: [service]),
                on: vm)
            let pid = output.trimmingCharacters(in: .whitespacesAndNewlines)
            return pid.isEmpty ? nil : pid
        }

        /// The application the profile configures, as a VM of the role would have it installed
        /// (`scripts/lab-app-service.sh`): an init script whose service runs its settings file.
        func installSpiderService(_ service: String, settings: String, on vm: VM) async throws {
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("scripts/lab-app-service.sh")
            let target = try await GuestLogin(keys: PlatformKeys(database: app.db, secrets: app.flotilla.secrets)).target(
                for: vm, user: "root")
            let result = try await app.flotilla.shell.run(
                RemoteShell.Command("sh", "-s", service, settings), on: target, standardInput: Array(try Data(contentsOf: script)),
                timeout: .seconds(30))
            guard result.succeeded else { throw GuestCommandFailed(description: "installing \(service): \(result.errorOutput)") }
        }
    }

    struct GuestCommandFailed: Error, CustomStringConvertible {
        let description: String
    }
}
