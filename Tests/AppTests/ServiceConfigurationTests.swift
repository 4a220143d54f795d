import Fluent
import XCTVapor

@testable import App

/// Service configuration through the API with guests in memory (issue 13 §1, §2, §5): profiles
/// stored with versions and sealed secrets, hostile documents refused with nothing stored, the
/// wizard's run rules, Configure refused before a passed check, and the preview's diff.
final class ServiceConfigurationTests: XCTestCase {
    static let profile = """
        name: shop
        variables: { db_name: shop }
        secrets: [redis_password]
        dependencies:
          redis: { checks: [{ kind: redis, password_secret: redis_password }] }
        targets:
          web:
            files:
              - path: /opt/shop/settings.py
                owner: root
                mode: "0640"
                validate: [python3, -m, py_compile, "{file}"]
                template: |
                  REDIS = "redis://:{{secrets.redis_password}}@{{dependencies.redis.address}}:{{dependencies.redis.port}}/0"
                  NAME = "{{variables.db_name}}"
            restart: [shop-web]

        """
    static let secret = "Sup3r-secret-value"

    func testProfilesKeepVersionsAndNeverAnswerSecrets() async throws {
        try await InMemoryWorld.run { world in
            let admin = world.admin
            let added = try await admin.request(
                .POST, "/api/v1/service-profiles", json: API.ProfileInput(document: Self.profile, secrets: ["redis_password": Self.secret]))
            XCTAssertEqual(added.status, .created, added.body.string)
            XCTAssertFalse(added.body.string.contains(Self.secret))
            let profile = try admin.decode(ServiceProfiles.Summary.self, added)
            XCTAssertEqual(profile.version, 1)
            XCTAssertEqual(profile.secretsSet, ["redis_password"])
            XCTAssertEqual(profile.dependencyRoles, ["redis"])

            let edited = try await admin.request(
                .PATCH, "/api/v1/service-profiles/\(profile.id)",
                json: API.ProfileInput(
                    document: Self.profile.replacingOccurrences(of: "db_name: shop", with: "db_name: shop2"), secrets: nil))
            XCTAssertEqual(edited.status, .ok, edited.body.string)
            XCTAssertEqual(try admin.decode(ServiceProfiles.Summary.self, edited).version, 2)
            // The same text again is no new version; setting only a secret is none either.
            let secretOnly = try await admin.request(
                .PATCH, "/api/v1/service-profiles/\(profile.id)",
                json: API.ProfileInput(document: nil, secrets: ["redis_password": "other"]))
            XCTAssertEqual(try admin.decode(ServiceProfiles.Summary.self, secretOnly).version, 2)

            let versions = try admin.decode(
                [ServiceProfiles.VersionSummary].self, try await admin.request(.GET, "/api/v1/service-profiles/\(profile.id)/versions"))
            XCTAssertEqual(versions.map(\.version), [2, 1])
            XCTAssertEqual(versions.first?.author, "admin")
            let first = try admin.decode(
                ServiceProfiles.Summary.self, try await admin.request(.GET, "/api/v1/service-profiles/\(profile.id)/versions/1"))
            XCTAssertEqual(first.document, Self.profile)

            let renamed = try await admin.request(
                .PATCH, "/api/v1/service-profiles/\(profile.id)",
                json: API.ProfileInput(document: Self.profile.replacingOccurrences(of: "name: shop\n", with: "name: other\n"), secrets: nil)
            )
            XCTAssertEqual(renamed.status, .badRequest)
            let undeclared = try await admin.request(
                .PATCH, "/api/v1/service-profiles/\(profile.id)", json: API.ProfileInput(document: nil, secrets: ["nope": "x"]))
            XCTAssertEqual(undeclared.status, .badRequest)

            // Sealed at rest: the row holds no secret in clear.
            let rows = try await ServiceProfileRecord.query(on: world.app.db).all()
            XCTAssertEqual(rows.count, 1)
            XCTAssertFalse(rows[0].secretsSealed.contains("other"))
            let listed = try await admin.request(.GET, "/api/v1/service-profiles")
            XCTAssertFalse(listed.body.string.contains("other\""))
        }
    }

    func testHostileProfilesAreRefusedAndNothingIsStored() async throws {
        let hostile = [
            Self.profile.replacingOccurrences(of: "/opt/shop/settings.py", with: "/opt/shop/../../etc/shadow"),
            Self.profile.replacingOccurrences(of: "/opt/shop/settings.py", with: "/etc/shadow"),
            Self.profile.replacingOccurrences(of: "[shop-web]", with: "[\"shop-web; rm -rf /\"]"),
            Self.profile.replacingOccurrences(of: "[python3, -m, py_compile, \"{file}\"]", with: "[\"sh -c 'curl x|sh'\", \"{file}\"]"),
            Self.profile.replacingOccurrences(of: "{ db_name: shop }", with: "{ db_name: \"shop\\nDEBUG = True\" }"),
            Self.profile.replacingOccurrences(of: "owner: root", with: "owner: \"root;id\""),
        ]
        try await InMemoryWorld.run { world in
            for document in hostile {
                let answer = try await world.admin.request(.POST, "/api/v1/service-profiles", json: API.ProfileInput(document: document))
                XCTAssertEqual(answer.status, .badRequest, document)
            }
            let count = try await ServiceProfileRecord.query(on: world.app.db).count()
            XCTAssertEqual(count, 0)
            // A secret value with a line break would start a new setting: refused too.
            let answer = try await world.admin.request(
                .POST, "/api/v1/service-profiles", json: API.ProfileInput(document: Self.profile, secrets: ["redis_password": "a\nb"]))
            XCTAssertEqual(answer.status, .badRequest)
        }
    }

    func testConfigureNeedsAPassedCheckAndRunsNeedDependenciesOfTheirRole() async throws {
        try await InMemoryWorld.run { world in
            let admin = world.admin
            let web = try await world.addReadyVM("web-1", "10.77.5.10", role: "web")
            let redis = try await world.addReadyVM("redis-1", "10.77.5.20", role: "redis")
            let profile = try admin.decode(
                ServiceProfiles.Summary.self,
                try await admin.request(
                    .POST, "/api/v1/service-profiles",
                    json: API.ProfileInput(document: Self.profile, secrets: ["redis_password": Self.secret])))

            let options = try admin.decode(
                ConfigurationWizard.Options.self,
                try await admin.request(.GET, "/api/v1/service-profiles/\(profile.id)/options?environment=\(world.environmentID)"))
            XCTAssertEqual(options.dependencies.map(\.role), ["redis"])
            XCTAssertEqual(options.dependencies.first?.vms.map(\.hostName), ["redis-1"])
            XCTAssertEqual(options.dependencies.first?.checks, ["redis on port 6379"])
            XCTAssertEqual(options.targets.first?.vms.map(\.hostName), ["web-1"])
            XCTAssertEqual(options.targets.first?.files, ["/opt/shop/settings.py"])

            // A web VM is no Redis: refused, no run stored.
            let wrongRole = try await admin.request(
                .POST, "/api/v1/configuration-runs",
                json: API.NewConfigurationRun(profileID: profile.id, environmentID: world.environmentID, dependencies: ["redis": web.id]))
            XCTAssertEqual(wrongRole.status, .badRequest, wrongRole.body.string)
            let missing = try await admin.request(
                .POST, "/api/v1/configuration-runs",
                json: API.NewConfigurationRun(profileID: profile.id, environmentID: world.environmentID, dependencies: [:]))
            XCTAssertEqual(missing.status, .badRequest)
            let runs = try await ConfigurationRun.query(on: world.app.db).count()
            XCTAssertEqual(runs, 0)

            let started = try await admin.request(
                .POST, "/api/v1/configuration-runs",
                json: API.NewConfigurationRun(profileID: profile.id, environmentID: world.environmentID, dependencies: ["redis": redis.id]))
            XCTAssertEqual(started.status, .created, started.body.string)
            let run = try admin.decode(ConfigurationWizard.RunBody.self, started)
            XCTAssertEqual(run.dependencies["redis"]?.ip, "10.77.5.20")
            XCTAssertNil(run.checkPassed)

            let refused = try await admin.request(
                .POST, "/api/v1/configuration-runs/\(run.id)/configure", json: API.ConfigurationTargets(targets: [web.id]))
            XCTAssertEqual(refused.status, .conflict, refused.body.string)
            XCTAssertTrue(refused.body.string.contains("check"), refused.body.string)
            let jobs = try await Job.query(on: world.app.db).filter(\.$kind == ConfigApplyStep.name).count()
            XCTAssertEqual(jobs, 0)

            // A failed check keeps Configure refused.
            let stored = try await ConfigurationRun.find(run.id, on: world.app.db)
            let row = try XCTUnwrap(stored)
            row.checkPassed = false
            row.checkedAt = Date()
            try await row.save(on: world.app.db)
            let stillRefused = try await admin.request(
                .POST, "/api/v1/configuration-runs/\(run.id)/configure", json: API.ConfigurationTargets(targets: [web.id]))
            XCTAssertEqual(stillRefused.status, .conflict)

            // Targets must be of a target role.
            let notTarget = try await admin.request(
                .POST, "/api/v1/configuration-runs/\(run.id)/preview", json: API.ConfigurationTargets(targets: [redis.id]))
            XCTAssertEqual(notTarget.status, .badRequest, notTarget.body.string)
        }
    }

    func testUnifiedDiffShowsChangedLinesWithContext() {
        let old = (1...10).map { "line \($0)" }.joined(separator: "\n") + "\n"
        let new = old.replacingOccurrences(of: "line 5\n", with: "line five\n")
        XCTAssertEqual(
            UnifiedDiff.make(old: old, new: new, path: "/opt/a.py"),
            """
            --- /opt/a.py
            +++ /opt/a.py
            @@ -2,7 +2,7 @@
             line 2
             line 3
             line 4
            -line 5
            +line five
             line 6
             line 7
             line 8

            """)
        XCTAssertEqual(UnifiedDiff.make(old: old, new: old, path: "/opt/a.py"), "")
        XCTAssertEqual(UnifiedDiff.make(old: nil, new: "a\n", path: "/opt/a.py"), "--- /dev/null\n+++ /opt/a.py\n@@ -0,0 +1,1 @@\n+a\n")
    }
}
