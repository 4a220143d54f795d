import Crypto
import Fluent
import XCTVapor

@testable import App

/// Every operation of the OpenAPI document called against the real application (vSphere and
/// guests in memory) with realistic data, each answer checked against the operation's
/// documented statuses and schemas (issue 14 item 3): its success, and the documented errors a
/// caller can provoke (bad input, no credentials, an ordinary administrator, an unknown ID, a
/// conflict).
final class APIContractTests: XCTestCase {
    /// Operations that cannot succeed without a real outside system; their error answers are
    /// still called and checked here, their successes are in the named tests.
    private static let checkedOnlyByTheirErrors: [String: String] = [
        "POST /api/v1/upgrades": "needs a served Git repository (UpgradeRolloutRulesTests)",
        "POST /api/v1/upgrades/rollback": "needs staged releases on the guests (UpgradeRolloutRulesTests)",
        "POST /api/v1/vms/{id}/services/{service}/{action}": "needs the monitor agent in a guest (MonitoringLabTests)",
    ]

    func testEveryOperationAnswersWhatTheDocumentSays() async throws {
        // Mail goes to a closed loopback port: test mails are queued (and later fail), never sent out.
        try await InMemoryWorld.run(["FLOTILLA_SMTP_HOST": "127.0.0.1", "FLOTILLA_SMTP_PORT": "9", "FLOTILLA_SMTP_SECURITY": "none"]) {
            world in
            let admin = world.admin
            let contract = try await APIContract(admin)
            let web = try await world.addReadyVM("web-1", "10.77.5.11", role: "web")
            let redis = try await world.addReadyVM("redis-1", "10.77.5.20", role: "redis")

            try await usersTokensAndLogs(contract, world)
            try await settings(contract, world)
            try await inventory(contract, world, web: web.id, redis: redis.id)
            try await monitoringAndNotifications(contract, world, web: web.id, redis: redis.id)
            try await upgrades(contract, world)
            try await serviceConfiguration(contract, world, web: web.id, redis: redis.id)
            try await everyOperationRefusesStrangersAndUnknownIDs(contract, world)

            let missing = Set(contract.checker.operations).subtracting(contract.succeeded).subtracting(Self.checkedOnlyByTheirErrors.keys)
            XCTAssertEqual(missing.sorted(), [], "operations never answered with success")
            for operation in Self.checkedOnlyByTheirErrors.keys {
                XCTAssertFalse(contract.answers[operation, default: []].isEmpty, "\(operation) was never called")
            }
        }
    }

    private func usersTokensAndLogs(_ contract: APIContract, _ world: InMemoryWorld) async throws {
        let admin = world.admin
        let user = try await contract.call(
            admin, .POST, "/api/v1/users",
            [
                "username": "olga", "password": "password-123", "passwordConfirmation": "password-123", "role": "ordinary",
                "email": "olga@example.com", "fullName": "Olga Berg",
            ], expect: .created)
        let userID = try Self.string(user, "id")
        try await contract.call(
            admin, .POST, "/api/v1/users",
            ["username": "olga", "password": "password-123", "passwordConfirmation": "other-123", "role": "x"],
            expect: .badRequest)
        try await contract.call(admin, .GET, "/api/v1/users?q=olg&page=1&per=20", expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/users/\(userID)", expect: .ok)
        try await contract.call(admin, .PATCH, "/api/v1/users/\(userID)", ["fullName": "Olga B. Berg", "role": "ordinary"], expect: .ok)

        let ordinary = try TestClient(world.app)
        try await contract.call(
            ordinary, .POST, "/api/v1/login", ["username": "olga", "password": "wrong-password"], expect: .unauthorized)
        try await contract.call(ordinary, .POST, "/api/v1/login", ["username": "olga", "password": "password-123"], expect: .ok)
        try await contract.call(
            ordinary, .POST, "/api/v1/users/me/password",
            ["currentPassword": "password-123", "password": "password-456", "passwordConfirmation": "password-456"], expect: .ok)
        try await contract.call(ordinary, .POST, "/api/v1/users", ["username": "eve"], expect: .forbidden)
        try await contract.call(ordinary, .DELETE, "/api/v1/logs", expect: .forbidden)

        let token = try await contract.call(admin, .POST, "/api/v1/tokens", ["name": "scripts", "expiresInDays": 30], expect: .created)
        let second = try await contract.call(admin, .POST, "/api/v1/tokens", ["name": "ci"], expect: .created)
        try await contract.call(admin, .POST, "/api/v1/tokens", ["name": "too long", "expiresInDays": 100_000], expect: .badRequest)
        try await contract.call(admin, .GET, "/api/v1/tokens", expect: .ok)
        let bearer = try TestClient(world.app)
        bearer.bearer = try Self.string(token, "token")
        try await contract.call(bearer, .GET, "/api/v1/environments", expect: .ok)
        try await contract.call(admin, .DELETE, "/api/v1/tokens", ["id": .init(try Self.uuid(second, "id"))], expect: .noContent)
        try await contract.call(admin, .DELETE, "/api/v1/tokens/\(try Self.string(token, "id"))", expect: .noContent)
        let olgaToken = try await contract.call(ordinary, .POST, "/api/v1/tokens", ["name": "laptop"], expect: .created)
        try await contract.call(admin, .GET, "/api/v1/users/\(userID)/tokens", expect: .ok)
        try await contract.call(
            admin, .DELETE, "/api/v1/users/\(userID)/tokens/\(try Self.string(olgaToken, "id"))", expect: .noContent)

        try await contract.call(admin, .GET, "/api/v1/logs?kind=login&kind=operation&page=1&per=20", expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/logs?from=not-a-time", expect: .badRequest)
        try await contract.call(admin, .POST, "/api/v1/logs/backup?kind=login", expect: .created)
        try await contract.call(admin, .DELETE, "/api/v1/logs", expect: .ok)
        try await contract.call(ordinary, .POST, "/api/v1/logout", expect: .ok)

        let doomed = try await contract.call(
            admin, .POST, "/api/v1/users",
            ["username": "temp", "password": "password-123", "passwordConfirmation": "password-123", "role": "system"], expect: .created)
        try await contract.call(admin, .DELETE, "/api/v1/users/\(try Self.string(doomed, "id"))", expect: .noContent)
    }

    private func settings(_ contract: APIContract, _ world: InMemoryWorld) async throws {
        let admin = world.admin
        let input: JSONBody = [
            "name": "second", "url": "https://vcenter2.example/sdk", "username": "flotilla", "password": "vsphere-pass",
            "datacenter": "DC0",
        ]
        try await contract.call(admin, .POST, "/api/v1/connections/test", input, expect: .ok)
        let connection = try await contract.call(admin, .POST, "/api/v1/connections", input, expect: .created)
        try await contract.call(admin, .POST, "/api/v1/connections", input, expect: .conflict)
        try await contract.call(admin, .POST, "/api/v1/connections", ["name": "", "url": "ftp://x"], expect: .badRequest)
        try await contract.call(admin, .GET, "/api/v1/connections", expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/connections/\(world.connectionID)/templates", expect: .ok)
        try await contract.call(admin, .DELETE, "/api/v1/connections/\(try Self.string(connection, "id"))", expect: .noContent)
        try await contract.call(admin, .DELETE, "/api/v1/connections/\(world.connectionID)", expect: .conflict)

        let role = try await contract.call(
            admin, .POST, "/api/v1/roles",
            [
                "name": "mysql", "connectionID": .init(world.connectionID), "template": "tpl-web", "cpus": 2, "memoryMB": 2048,
                "sshUser": "root", "services": "sshd,mysqld",
            ], expect: .created)
        try await contract.call(
            admin, .POST, "/api/v1/roles", ["name": "bad.name", "connectionID": .init(world.connectionID), "template": "tpl-web"],
            expect: .badRequest)
        try await contract.call(admin, .GET, "/api/v1/roles", expect: .ok)
        try await contract.call(
            admin, .PATCH, "/api/v1/roles/\(try Self.string(role, "id"))",
            [
                "name": "mysql", "connectionID": .init(world.connectionID), "template": "tpl-web", "cpus": 4,
                "monitor": [
                    ["name": "mysql", "process": "mysqld", "start": "service mysql start", "attempts": 3, "graceSeconds": 5, "owners": []]
                ],
            ], expect: .ok)

        try await contract.call(admin, .GET, "/api/v1/ssh-keys", expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/instances", expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/health", expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/openapi.json", expect: .ok)
    }

    private func inventory(_ contract: APIContract, _ world: InMemoryWorld, web: UUID, redis: UUID) async throws {
        let admin = world.admin
        let environment = try await contract.call(
            admin, .POST, "/api/v1/environments", ["name": "qa", "description": "for testers"], expect: .created)
        let environmentID = try Self.string(environment, "id")
        try await contract.call(admin, .POST, "/api/v1/environments", ["name": "qa"], expect: .conflict)
        try await contract.call(admin, .POST, "/api/v1/environments", ["name": "no spaces allowed!"], expect: .badRequest)
        try await contract.call(admin, .GET, "/api/v1/environments?page=1&per=20", expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/environments/\(world.environmentID)", expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/environments/\(world.environmentID)/live", expect: .ok)
        try await contract.call(admin, .PATCH, "/api/v1/environments/\(environmentID)", ["description": "for the QA team"], expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/environments/\(world.environmentID)/blueprint", expect: .ok)

        await world.shell.add(
            .init(hostName: "qa-web-3", password: InMemoryWorld.guestPassword, running: ["sshd", "web"]), at: "10.77.6.13")
        let added = try await contract.call(
            admin, .POST, "/api/v1/environments/\(environmentID)/vms",
            [
                "hostName": "qa-web-3", "ip": "10.77.6.13", "netmask": "24", "gateway": "10.77.6.1", "role": "web",
                "password": .string(InMemoryWorld.guestPassword), "passwordConfirmation": .string(InMemoryWorld.guestPassword),
            ], expect: .accepted)
        try await contract.call(
            admin, .POST, "/api/v1/environments/\(environmentID)/vms",
            [
                "hostName": "x", "ip": "999.1.1.1", "netmask": "24", "gateway": "10.77.6.1", "role": "web", "password": "a",
                "passwordConfirmation": "b",
            ],
            expect: .badRequest)
        _ = try await world.waitForJob(try Self.uuid(added, "jobID"))

        let blueprint = """
            name: shop
            roles: { web: 1, redis: 1 }
            network: { range: 10.77.7.10-10.77.7.20, netmask: 255.255.0.0, gateway: 10.77.0.1 }
            """
        for address in ["10.77.7.10", "10.77.7.11"] {
            await world.shell.add(.init(hostName: "shop", password: InMemoryWorld.guestPassword), at: address)
        }
        try await contract.call(admin, .POST, "/api/v1/blueprints/check", ["blueprint": .string(blueprint)], expect: .ok)
        try await contract.call(admin, .POST, "/api/v1/blueprints/check", ["blueprint": "roles: [unclosed"], expect: .badRequest)
        let deployment = try await contract.call(
            admin, .POST, "/api/v1/blueprints/deploy",
            [
                "blueprint": .string(blueprint), "password": .string(InMemoryWorld.guestPassword),
                "passwordConfirmation": .string(InMemoryWorld.guestPassword),
            ], expect: .accepted)
        _ = try await world.waitForJob(try Self.uuid(deployment, "jobID"))
        let shopID = try Self.string(deployment, "environmentID")
        for address in ["10.77.8.10", "10.77.8.11"] {
            await world.shell.add(.init(hostName: "shop2", password: InMemoryWorld.guestPassword), at: address)
        }
        let clone = try await contract.call(
            admin, .POST, "/api/v1/environments/\(shopID)/clone",
            [
                "name": "shop2", "range": "10.77.8.10-10.77.8.20", "password": .string(InMemoryWorld.guestPassword),
                "passwordConfirmation": .string(InMemoryWorld.guestPassword),
            ], expect: .accepted)
        _ = try await world.waitForJob(try Self.uuid(clone, "jobID"))

        await world.vsphere.addMachine("legacy-db", guestIPAddress: "10.77.6.40")
        await world.shell.add(.init(hostName: "legacy-db", password: InMemoryWorld.guestPassword), at: "10.77.6.40")
        try await contract.call(
            admin, .POST, "/api/v1/environments/\(environmentID)/adopt",
            ["connectionID": .init(world.connectionID), "names": ["legacy-db"], "role": "redis", "password": "wrong-password"],
            expect: .badRequest)
        try await contract.call(
            admin, .POST, "/api/v1/environments/\(environmentID)/adopt",
            [
                "connectionID": .init(world.connectionID), "names": ["legacy-db"], "role": "redis",
                "password": .string(InMemoryWorld.guestPassword),
            ], expect: .created)

        try await contract.call(admin, .GET, "/api/v1/vms/\(web)", expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/vms?q=web&page=1&per=20", expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/vms/\(web)/metrics?range=6h", expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/vms/\(web)/metrics?range=forever", expect: .badRequest)
        try await contract.call(admin, .GET, "/api/v1/vms/\(web)/reachability?page=1&per=20", expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/vms/\(web)/drift", expect: .ok)
        try await contract.call(admin, .PUT, "/api/v1/vms/\(web)/notes", ["notes": "front end, keep warm"], expect: .ok)
        try await contract.call(
            admin, .PUT, "/api/v1/vms/\(web)/notes", ["notes": .string(String(repeating: "n", count: 2001))], expect: .badRequest)
        for (path, body) in [
            ("/api/v1/vms/\(web)/power", ["action": "restart"] as JSONBody),
            ("/api/v1/vms/\(web)/password", ["password": "New-pass-2", "passwordConfirmation": "New-pass-2"]),
            ("/api/v1/vms/\(redis)/network", ["ip": "10.77.5.21", "netmask": "255.255.255.0", "gateway": "10.77.5.1"]),
            ("/api/v1/vms/power", ["vms": [.init(web)], "action": "on"]),
            ("/api/v1/environments/power", ["action": "on", "ids": [.init(world.environmentID)]]),
        ] {
            let answer = try await contract.call(admin, .POST, path, body, expect: .accepted)
            _ = try await world.waitForJob(try Self.uuid(answer, "jobID"))
        }
        try await contract.call(
            admin, .POST, "/api/v1/vms/\(web)/password", ["password": "a", "passwordConfirmation": "b"], expect: .badRequest)
        try await contract.call(admin, .POST, "/api/v1/vms/\(web)/power", ["action": "explode"], expect: .badRequest)

        let jobs = try await contract.call(admin, .GET, "/api/v1/jobs?status=succeeded&kind=vm.create&page=1&per=20", expect: .ok)
        let jobID = try XCTUnwrap(
            try JSONValue.parse(Data(buffer: jobs.body))["items"].flatMap { items -> String? in
                if case .array(let rows) = items { return rows.first?["id"]?.string }
                return nil
            })
        try await contract.call(admin, .GET, "/api/v1/jobs/\(jobID)", expect: .ok)
        try await contract.call(admin, .POST, "/api/v1/jobs/\(jobID)/cancel", expect: .conflict)
        let rotation = try await contract.call(admin, .POST, "/api/v1/ssh-keys/rotate", expect: .accepted)
        let rotationJob = try Self.uuid(rotation, "jobID")
        try await contract.call(admin, .POST, "/api/v1/jobs/\(rotationJob)/cancel", expect: .ok)
        _ = try await world.waitForJob(rotationJob)

        let qaVM = try Self.uuid(added, "vm", "id")
        let deleted = try await contract.call(admin, .DELETE, "/api/v1/vms/\(qaVM)", expect: .accepted)
        _ = try await world.waitForJob(try Self.uuid(deleted, "jobID"))
        let batch = try await contract.call(admin, .POST, "/api/v1/environments/delete", ["ids": [.string(shopID)]], expect: .accepted)
        _ = try await world.waitForJob(try Self.uuid(batch, "jobID"))
        let single = try await contract.call(admin, .DELETE, "/api/v1/environments/\(environmentID)", expect: .accepted)
        _ = try await world.waitForJob(try Self.uuid(single, "jobID"))
    }

    private func monitoringAndNotifications(_ contract: APIContract, _ world: InMemoryWorld, web: UUID, redis: UUID) async throws {
        let admin = world.admin
        try await contract.call(admin, .GET, "/api/v1/dashboard", expect: .ok)
        let snapshot = try await contract.call(admin, .GET, "/api/v1/dashboard/events?since=0", expect: .ok)
        let summary = try XCTUnwrap(APIContract.events(snapshot.body.string).first { $0["event"] == .string("summary") }?["data"]?.string)
        XCTAssertEqual(
            contract.checker.problems(
                try JSONValue.parse(Data(summary.utf8)), .object(["$ref": .string("#/components/schemas/DashboardSummary")])),
            [])

        let install = try await contract.call(
            admin, .POST, "/api/v1/vms/\(redis)/agent", ["platformURL": "http://10.77.0.1:8080"], expect: .accepted)
        _ = try await world.waitForJob(try Self.uuid(install, "jobID"))
        try await contract.call(admin, .POST, "/api/v1/vms/\(redis)/agent", ["platformURL": "ftp://10.77.0.1"], expect: .badRequest)
        let secret = try await AgentCredentials(
            database: world.app.db, secrets: world.app.flotilla.secrets, identities: world.app.agentIdentities
        )
        .issue(for: redis, platformURL: "http://10.77.0.1:8080")
        let heartbeat =
            #"{"vm":"\#(redis.uuidString)","agent_version":"1","sent_at":1790000001,"queued_events":0,"#
            + #""services":[{"name":"redis","state":"running","restarts":1,"failures":0,"attempts":0,"since":1790000000.5}]}"#
        let events =
            #"{"vm":"\#(redis.uuidString)","events":[{"kind":"restarted","service":"redis","attempts":1,"#
            + #""outage_started_at":1790000000,"occurred_at":1790000002,"sequence":1,"epoch":"0a1b2c"}]}"#
        for (path, body) in [("/api/v1/agent/heartbeat", heartbeat), ("/api/v1/agent/events", events)] {
            let answer = try await Self.signedAgentPost(world.app, path, body, vm: redis, secret: secret)
            contract.check(.POST, path, answer)
            XCTAssertEqual(answer.status, .ok, answer.body.string)
            let forged = try await Self.signedAgentPost(world.app, path, body, vm: redis, secret: "not-the-secret")
            contract.check(.POST, path, forged)
        }
        let roles = try JSONValue.parse(Data(buffer: try await admin.request(.GET, "/api/v1/roles").body))
        guard case .array(let rows) = roles, let redisRole = rows.first(where: { $0["name"]?.string == "redis" })?["id"]?.string else {
            return XCTFail("no redis role")
        }
        try await contract.call(
            admin, .PATCH, "/api/v1/roles/\(redisRole)",
            [
                "name": "redis", "connectionID": .init(world.connectionID), "template": "tpl-redis",
                "monitor": [
                    [
                        "name": "redis", "process": "redis-server", "start": "redis-server --daemonize yes", "attempts": 3,
                        "graceSeconds": 5, "owners": [],
                    ]
                ],
            ], expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/vms/\(redis)/services", expect: .ok)
        try await contract.call(admin, .POST, "/api/v1/vms/\(redis)/services/redis/reload", expect: .badRequest)
        let control = try await admin.request(.POST, "/api/v1/vms/\(redis)/services/redis/restart")
        contract.check(.POST, "/api/v1/vms/\(redis)/services/redis/restart", control)
        // The guest refuses the platform's key: the guest is unavailable (503).
        let address = try JSONValue.parse(Data(buffer: try await admin.request(.GET, "/api/v1/vms/\(redis)").body))["ip"]?.string
        await world.shell.update(try XCTUnwrap(address)) { $0.acceptsKeyLogin = false }
        try await contract.call(admin, .POST, "/api/v1/vms/\(redis)/services/redis/restart", expect: .serviceUnavailable)
        await world.shell.update(try XCTUnwrap(address)) { $0.acceptsKeyLogin = true }

        try await contract.call(admin, .GET, "/api/v1/notifications/settings", expect: .ok)
        try await contract.call(admin, .PATCH, "/api/v1/notifications/settings", ["rateLimitSeconds": 600], expect: .ok)
        try await contract.call(admin, .PATCH, "/api/v1/notifications/settings", ["rateLimitSeconds": -1], expect: .badRequest)
        try await contract.call(admin, .POST, "/api/v1/notifications/test-mail", ["to": "ops@example.com"], expect: .accepted)
        try await contract.call(admin, .POST, "/api/v1/notifications/test-mail", ["to": "not an address"], expect: .badRequest)
        let webhook = try await contract.call(
            admin, .POST, "/api/v1/webhooks", ["name": "chat", "url": "http://127.0.0.1:9/hook"], expect: .created)
        try await contract.call(
            admin, .POST, "/api/v1/webhooks", ["name": "chat", "url": "http://user:pw@127.0.0.1/"], expect: .badRequest)
        try await contract.call(admin, .GET, "/api/v1/webhooks", expect: .ok)
        let webhookID = try Self.string(webhook, "id")
        let delivery = try await contract.call(admin, .POST, "/api/v1/webhooks/\(webhookID)/test", expect: .accepted)
        try await contract.call(admin, .GET, "/api/v1/notifications/deliveries?channel=webhook&page=1&per=20", expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/notifications/deliveries/\(try Self.string(delivery, "id"))", expect: .ok)
        try await contract.call(admin, .DELETE, "/api/v1/webhooks/\(webhookID)", expect: .noContent)
    }

    private func upgrades(_ contract: APIContract, _ world: InMemoryWorld) async throws {
        let admin = world.admin
        let roles = try JSONValue.parse(Data(buffer: try await admin.request(.GET, "/api/v1/roles").body))
        guard case .array(let rows) = roles, let webRole = rows.first(where: { $0["name"]?.string == "web" })?["id"]?.string else {
            return XCTFail("no web role")
        }
        let application = try await contract.call(
            admin, .PUT, "/api/v1/roles/\(webRole)/application",
            [
                "repositoryKind": "git", "repositoryURL": "https://git.example.com/shop.git", "branch": "main",
                "deployDirectory": "/srv/shop",
                "restartCommand": "systemctl restart shop", "healthKind": "http", "healthTarget": "http://127.0.0.1:8000/health",
            ], expect: .ok)
        try await contract.call(
            admin, .PUT, "/api/v1/roles/\(webRole)/application",
            ["repositoryKind": "cvs", "repositoryURL": "x", "deployDirectory": "relative", "restartCommand": "", "healthKind": "http"],
            expect: .badRequest)
        try await contract.call(admin, .GET, "/api/v1/applications", expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/upgrades/vms?drift=0&page=1&per=20", expect: .ok)
        let applicationID = try Self.string(application, "id")
        try await contract.call(
            admin, .POST, "/api/v1/upgrades",
            ["applicationID": .string(applicationID), "environmentID": .init(world.environmentID), "revision": "HEAD; rm -rf /"],
            expect: .badRequest)
        try await contract.call(
            admin, .POST, "/api/v1/upgrades/rollback", ["applicationID": .init(UUID()), "environmentID": .init(world.environmentID)],
            expect: .notFound)

        let hook = try await contract.call(
            admin, .POST, "/api/v1/upgrade-hooks", ["format": "generic", "repositoryURL": "https://git.example.com/shop.git"],
            expect: .created)
        try await contract.call(admin, .POST, "/api/v1/upgrade-hooks", ["format": "cvs", "repositoryURL": "x"], expect: .badRequest)
        try await contract.call(admin, .GET, "/api/v1/upgrade-hooks", expect: .ok)
        let hookID = try Self.string(hook, "id")
        let push = Data(#"{"revision":"\#(String(repeating: "a1", count: 20))","branch":"main"}"#.utf8)
        let stamp = String(Int(Date().timeIntervalSince1970))
        let signature = HMAC<SHA256>.authenticationCode(
            for: Data("\(stamp).".utf8) + push, using: SymmetricKey(data: Data(try Self.string(hook, "secret").utf8))
        ).map { String(format: "%02x", $0) }.joined()
        let path = "/api/v1/hooks/generic/\(hookID)"
        let delivered = try await world.app.testable().performTest(
            request: TestingHTTPRequest(
                method: .POST, url: URI(string: path),
                headers: [
                    "Content-Type": "application/json", "X-Flotilla-Timestamp": stamp, "X-Flotilla-Signature": "sha256=\(signature)",
                ],
                body: ByteBuffer(data: push)))
        contract.check(.POST, path, delivered)
        XCTAssertTrue([.ok, .accepted].contains(delivered.status), delivered.body.string)
        try await contract.call(admin, .DELETE, "/api/v1/upgrade-hooks/\(hookID)", expect: .noContent)
        try await contract.call(admin, .DELETE, "/api/v1/roles/\(webRole)/application", expect: .noContent)
    }

    private func serviceConfiguration(_ contract: APIContract, _ world: InMemoryWorld, web: UUID, redis: UUID) async throws {
        let admin = world.admin
        let profile = try await contract.call(
            admin, .POST, "/api/v1/service-profiles",
            ["document": .string(ServiceConfigurationTests.profile), "secrets": ["redis_password": "Sup3r-secret-value"]], expect: .created)
        try await contract.call(admin, .POST, "/api/v1/service-profiles", ["document": "name: [broken"], expect: .badRequest)
        let profileID = try Self.string(profile, "id")
        try await contract.call(admin, .GET, "/api/v1/service-profiles", expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/service-profiles/\(profileID)", expect: .ok)
        try await contract.call(
            admin, .PATCH, "/api/v1/service-profiles/\(profileID)",
            ["document": .string(ServiceConfigurationTests.profile.replacingOccurrences(of: "db_name: shop", with: "db_name: shop2"))],
            expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/service-profiles/\(profileID)/versions", expect: .ok)
        try await contract.call(admin, .GET, "/api/v1/service-profiles/\(profileID)/versions/1", expect: .ok)
        try await contract.call(
            admin, .GET, "/api/v1/service-profiles/\(profileID)/options?environment=\(world.environmentID)", expect: .ok)
        let run = try await contract.call(
            admin, .POST, "/api/v1/configuration-runs",
            ["profileID": .string(profileID), "environmentID": .init(world.environmentID), "dependencies": ["redis": .init(redis)]],
            expect: .created)
        let runID = try Self.string(run, "id")
        try await contract.call(admin, .GET, "/api/v1/configuration-runs/\(runID)", expect: .ok)
        try await contract.call(admin, .POST, "/api/v1/configuration-runs/\(runID)/configure", ["targets": [.init(web)]], expect: .conflict)
        try await contract.call(
            admin, .POST, "/api/v1/configuration-runs/\(runID)/preview", ["targets": [.init(redis)]], expect: .badRequest)
        try await contract.call(admin, .POST, "/api/v1/configuration-runs/\(runID)/check", ["targets": [.init(web)]], expect: .ok)
        try await contract.call(admin, .POST, "/api/v1/configuration-runs/\(runID)/preview", ["targets": [.init(web)]], expect: .ok)
        let stored = try await ConfigurationRun.find(UUID(uuidString: runID), on: world.app.db)
        let row = try XCTUnwrap(stored)
        row.checkPassed = true
        row.checkedAt = Date()
        try await row.save(on: world.app.db)
        let configure = try await contract.call(
            admin, .POST, "/api/v1/configuration-runs/\(runID)/configure", ["targets": [.init(web)]], expect: .accepted)
        _ = try await world.waitForJob(try Self.uuid(configure, "jobID"))
        try await contract.call(admin, .POST, "/api/v1/configuration-drift", ["environmentID": .init(world.environmentID)], expect: .ok)
        let other = try await contract.call(
            admin, .POST, "/api/v1/service-profiles",
            ["document": .string(ServiceConfigurationTests.profile.replacingOccurrences(of: "name: shop\n", with: "name: unused\n"))],
            expect: .created)
        try await contract.call(admin, .DELETE, "/api/v1/service-profiles/\(try Self.string(other, "id"))", expect: .noContent)
    }

    /// Every operation without credentials (401 unless it is public), as an ordinary
    /// administrator where USR-6 keeps it from them (403), and with unknown IDs (404 or 400).
    private func everyOperationRefusesStrangersAndUnknownIDs(_ contract: APIContract, _ world: InMemoryWorld) async throws {
        let stranger = try TestClient(world.app)
        let ordinary = try TestClient(world.app)
        try await ordinary.signIn("olga", "password-456")
        let values = ["format": "generic", "service": "redis", "action": "restart", "version": "1"]
        for operation in contract.checker.operations {
            let parts = operation.split(separator: " ", maxSplits: 1).map(String.init)
            let method = HTTPMethod(rawValue: parts[0])
            let path = parts[1].replacing(/\{(\w+)\}/) { match in values[String(match.1)] ?? UUID().uuidString }
            guard !["/api/v1/login", "/api/v1/logout"].contains(parts[1]) else { continue }
            let roles = contract.checker.operation(method, parts[1])?["x-flotilla-roles"]
            if roles != nil {
                let answer = try await contract.call(stranger, method, path, [:], expect: .unauthorized)
                XCTAssertEqual(answer.errorCode, "unauthenticated", operation)
            }
            if case .array(let allowed) = roles, !allowed.contains(.string("ordinary")) {
                try await contract.call(ordinary, method, path, [:], expect: .forbidden)
            }
            if parts[1].contains("{") {
                let answer = try await world.admin.request(method, path, json: [:] as JSONBody)
                contract.check(method, path, answer)
                XCTAssertTrue([.notFound, .badRequest].contains(answer.status), "\(operation) with unknown IDs: \(answer.status)")
            }
        }
    }

    private static func signedAgentPost(
        _ app: Application, _ path: String, _ body: String, vm: UUID, secret: String
    ) async throws
        -> TestingHTTPResponse
    {
        let stamp = String(Int(Date().timeIntervalSince1970))
        let code = HMAC<SHA256>.authenticationCode(
            for: Data("\(stamp)\nPOST\n\(path)\n\(body)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return try await app.testable().performTest(
            request: TestingHTTPRequest(
                method: .POST, url: URI(string: path),
                headers: [
                    "Content-Type": "application/json", "X-Flotilla-Agent": vm.uuidString, "X-Flotilla-Timestamp": stamp,
                    "X-Flotilla-Signature": code.map { String(format: "%02x", $0) }.joined(),
                ], body: ByteBuffer(string: body)))
    }

    private static func string(_ answer: TestingHTTPResponse, _ keys: String...) throws -> String {
        var value: JSONValue? = try JSONValue.parse(Data(buffer: answer.body))
        for key in keys { value = value?[key] }
        return try XCTUnwrap(value?.string, "\(keys) in \(answer.body.string)")
    }

    private static func uuid(_ answer: TestingHTTPResponse, _ keys: String...) throws -> UUID {
        var value: JSONValue? = try JSONValue.parse(Data(buffer: answer.body))
        for key in keys { value = value?[key] }
        return try XCTUnwrap(value?.string.flatMap(UUID.init(uuidString:)), "\(keys) in \(answer.body.string)")
    }
}
