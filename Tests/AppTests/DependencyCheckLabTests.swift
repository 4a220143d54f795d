import Fluent
import Foundation
import Lab
import XCTVapor

@testable import App

/// A profile's dependency checks against the lab (root, vcsim, guest namespaces; run under the
/// lab lock): real MariaDB, Redis and RabbitMQ answer their protocols, Mongo and NFS stand-ins
/// get a process-and-port check that says so, every check runs from the platform and from each
/// target VM (MariaDB sees the target's address), and each failure names its layer.
final class DependencyCheckLabTests: XCTestCase {
    static let dependencyRoles = ["mysql", "redis", "rabbitmq", "mongo", "nfs"]
    static let targetRoles = ["web", "daemon", "celery"]
    static let lab = LabConfiguration(
        stateDirectory: "/var/lib/flotilla-lab-checktest", roles: dependencyRoles + targetRoles, preCreatedVMs: 8,
        pollInterval: .milliseconds(250))

    static let profileText = """
        name: checks
        secrets: [mysql_password, rabbitmq_password]
        dependencies:
          mysql: { checks: [{ kind: mysql, user: flotilla, password_secret: mysql_password, database: flotilla }] }
          redis: { checks: [{ kind: redis }] }
          rabbitmq: { checks: [{ kind: rabbitmq, user: flotilla, password_secret: rabbitmq_password, vhost: / }] }
          mongo: { checks: [{ kind: mongo }] }
          nfs: { checks: [{ kind: nfs }] }
        targets:
          web: { files: [{ path: /opt/app/settings.py, owner: root, mode: "0644", template: "HOST = '{{dependencies.mysql.address}}'" }] }
          daemon: { files: [{ path: /opt/app/conf.py, owner: root, mode: "0644", template: "HOST = '{{dependencies.redis.address}}'" }] }
          celery: { files: [{ path: /opt/app/conf.py, owner: root, mode: "0644", template: "HOST = '{{dependencies.rabbitmq.address}}'" }] }
        """

    func testChecksSpeakEachProtocolFromEveryTargetAndNameTheFailingLayer() async throws {
        try await Self.lab.withApp { app, vcsim in try await exercise(app, vcsim: vcsim) }
    }

    private func exercise(_ app: Application, vcsim: VcsimProcess) async throws {
        let admin = try TestClient(app)
        try await admin.signIn("admin", TestApp.adminPassword)
        let adopted = try await admin.adoptLab(Self.lab, vcsim: vcsim, roles: Self.dependencyRoles + Self.targetRoles)
        XCTAssertEqual(adopted, 8)
        let flotilla = app.flotilla
        let vms = try await VM.query(on: app.db).with(\.$role).all()
        var byRole: [String: VM] = [:]
        for vm in vms { byRole[vm.role.name] = vm }
        let dependencies = byRole.filter { Self.dependencyRoles.contains($0.key) }
        let targets = Self.targetRoles.compactMap { byRole[$0] }
        XCTAssertEqual(dependencies.count, 5)
        XCTAssertEqual(targets.count, 3)

        let profile = try ServiceProfile.parse(Self.profileText)
        let secrets = ["mysql_password": "flotilla", "rabbitmq_password": "flotilla"]
        let checks = try await checker(app)

        // RabbitMQ needs some seconds after boot; everything else is up by now.
        var report = try await checks.run(profile: profile, dependencies: dependencies, targets: targets, secrets: secrets)
        let waitUntil = ContinuousClock.now + .seconds(60)
        while !report.passed, ContinuousClock.now < waitUntil {
            try await Task.sleep(for: .seconds(1))
            report = try await checks.run(profile: profile, dependencies: dependencies, targets: targets, secrets: secrets)
        }
        XCTAssertTrue(report.passed, report.failures.joined(separator: "\n"))
        XCTAssertEqual(report.results.count, 5 * 4, "5 checks from the platform and 3 targets")
        XCTAssertEqual(Set(report.results.map(\.origin)), Set(["platform"] + targets.map(\.hostName)))
        let methods = Dictionary(report.results.map { ($0.service, $0.method) }, uniquingKeysWith: { first, _ in first })
        XCTAssertEqual(
            methods, ["mysql": .protocol, "redis": .protocol, "rabbitmq": .protocol, "mongo": .processAndPort, "nfs": .processAndPort])
        XCTAssertTrue(report.results.first { $0.service == "redis" }?.message.contains("PONG") ?? false)
        XCTAssertTrue(report.results.first { $0.service == "rabbitmq" }?.message.contains("RabbitMQ") ?? false, "\(report.results)")
        XCTAssertTrue(report.results.first { $0.service == "mongo" }?.methodDescription.contains("stand-in") ?? false)
        // A check from a target really leaves from there: MariaDB names the client's address.
        for target in targets {
            let mysql = try XCTUnwrap(report.results.first { $0.service == "mysql" && $0.origin == target.hostName })
            XCTAssertTrue(mysql.message.contains("flotilla@\(target.ip)"), mysql.message)
        }
        print("dependency checks (5 checks × platform + 3 targets): verdict in \(report.elapsedMilliseconds) ms")

        // A wrong MySQL password: authentication, from every origin.
        let wrong = try await checks.run(
            profile: profile, dependencies: dependencies, targets: targets, secrets: secrets.merging(["mysql_password": "wrong"]) { $1 })
        XCTAssertFalse(wrong.passed)
        let mysqlResults = wrong.results.filter { $0.service == "mysql" }
        XCTAssertEqual(mysqlResults.count, 4)
        XCTAssertTrue(mysqlResults.allSatisfy { $0.layer == .authentication }, "\(mysqlResults)")
        XCTAssertTrue(wrong.results.filter { $0.service != "mysql" }.allSatisfy(\.passed))

        // No route: the chosen Redis VM's address answers nothing.
        let redisID = try XCTUnwrap(byRole["redis"]?.id)
        let fresh = try await VM.query(on: app.db).filter(\.$id == redisID).with(\.$role).first()
        let unreachable = try XCTUnwrap(fresh)
        unreachable.ip = "10.77.254.254"
        let lost = try await checks.run(
            profile: profile, dependencies: dependencies.merging(["redis": unreachable]) { $1 }, targets: targets, secrets: secrets,
            timeout: .seconds(2))
        let redisLost = lost.results.filter { $0.service == "redis" }
        XCTAssertTrue(redisLost.allSatisfy { $0.layer == .noRoute }, "\(redisLost)")
        XCTAssertLessThan(lost.elapsedMilliseconds, 9000)

        // Stopped servers: the real Redis and the Mongo stand-in; each names its service and layer.
        for (role, process) in [("redis", "redis-server"), ("mongo", "mongod")] {
            let vm = try XCTUnwrap(byRole[role])
            let target = try await GuestLogin(keys: PlatformKeys(database: app.db, secrets: flotilla.secrets)).target(for: vm, user: "root")
            let stopped = try await flotilla.shell.run(.init("pkill", "-x", process), on: target)
            XCTAssertEqual(stopped.exitStatus, 0, "\(process) was not running on \(vm.hostName)")
        }
        try await Task.sleep(for: .milliseconds(300))
        let down = try await checks.run(profile: profile, dependencies: dependencies, targets: targets, secrets: secrets)
        XCTAssertFalse(down.passed)
        for service in ["redis", "mongo"] {
            let results = down.results.filter { $0.service == service }
            XCTAssertTrue(results.allSatisfy { $0.layer == .serviceNotRunning }, "\(results)")
        }
        let redisVM = try XCTUnwrap(byRole["redis"])
        XCTAssertTrue(
            down.failures.contains { $0.hasPrefix("redis on \(redisVM.hostName)") && $0.contains("service not running") },
            down.failures.joined(separator: "\n"))
        XCTAssertTrue(down.results.filter { !["redis", "mongo"].contains($0.service) }.allSatisfy(\.passed))
    }

    private func checker(_ app: Application) async throws -> DependencyChecks {
        DependencyChecks(
            shell: app.flotilla.shell, login: GuestLogin(keys: PlatformKeys(database: app.db, secrets: app.flotilla.secrets)),
            checkerPath: DependencyChecks.checkerPath(viewsDirectory: app.directory.viewsDirectory))
    }
}
