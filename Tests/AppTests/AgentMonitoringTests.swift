import Crypto
import Fluent
import XCTVapor

@testable import App

/// The platform side of the monitor agents (SPEC MON-2..4, VM-13): signed reports, forgeries
/// refused and audited, events stored and audited once, silence, and roles' watched services.
final class AgentMonitoringTests: XCTestCase {
    func testSignedHeartbeatIsStoredAndShownOnTheVM() async throws {
        try await Self.run { app in
            let fixture = try await AgentFixture.make(app)
            let answer = try await fixture.post(
                "/api/v1/agent/heartbeat", AgentFixture.heartbeat(vm: fixture.vm1, services: [("redis", "running", 2)]), as: fixture.vm1)
            XCTAssertEqual(answer.status, .ok, answer.body.string)
            let shown = try fixture.admin.decode(
                API.VMServices.self, try await fixture.admin.request(.GET, "/api/v1/vms/\(fixture.vm1)/services"))
            XCTAssertEqual(shown.agent.state, "reporting")
            XCTAssertEqual(shown.services.map(\.name), ["redis"])
            XCTAssertEqual(shown.services.first?.restarts, 2)
            let other = try fixture.admin.decode(
                API.VMServices.self, try await fixture.admin.request(.GET, "/api/v1/vms/\(fixture.vm2)/services"))
            XCTAssertEqual(other.agent.state, "not installed")
        }
    }

    /// Heartbeats of 1,000 agents (200 a second) are one statement each: the upsert of the VM's
    /// status row. The agent's credential, VM and role are kept (read in one statement when
    /// first needed, again a minute later), and nothing is audited while the agent reports.
    func testAHeartbeatRunsOneStatement() async throws {
        try await Self.run { app in
            let fixture = try await AgentFixture.make(app)
            let log = StatementLog()
            app.logger = Logger(label: "statements") { _ in log.handler }
            let heartbeat = AgentFixture.heartbeat(vm: fixture.vm1, services: [("redis", "running", 0), ("worker", "down", 1)])
            let first = try await log.statements { try await fixture.post("/api/v1/agent/heartbeat", heartbeat, as: fixture.vm1) }
            XCTAssertEqual(first.count, 2, "the credential with its VM and role, and the status\n\(first.joined(separator: "\n"))")
            for _ in 0..<3 {
                let kept = try await log.statements { try await fixture.post("/api/v1/agent/heartbeat", heartbeat, as: fixture.vm1) }
                XCTAssertEqual(kept.count, 1, "the status alone\n\(kept.joined(separator: "\n"))")
                XCTAssertTrue(kept.first?.uppercased().hasPrefix("INSERT INTO") ?? false, kept.first ?? "")
            }
            let status = try await AgentStatus.query(on: app.db).filter(\.$vmID == fixture.vm1).first()
            XCTAssertEqual(status?.services.map(\.name), ["redis", "worker"])
            XCTAssertNil(status?.silentSince)
            let audited = try await LogEntry.query(on: app.db).filter(\.$action ~~ ["agent.back", "agent.refused"]).count()
            XCTAssertEqual(audited, 0)
        }
    }

    func testForgedReportsAreRefusedAndLogged() async throws {
        try await Self.run { app in
            let fixture = try await AgentFixture.make(app)
            let forVM2 = AgentFixture.heartbeat(vm: fixture.vm2, services: [("redis", "running", 0)])
            // VM 1's credential used to speak for VM 2, either way round.
            let forged = [
                try await fixture.post("/api/v1/agent/heartbeat", forVM2, as: fixture.vm2, signedBy: fixture.vm1),
                try await fixture.post("/api/v1/agent/heartbeat", forVM2, as: fixture.vm1, signedBy: fixture.vm1),
                try await fixture.post("/api/v1/agent/heartbeat", forVM2, as: fixture.vm2, signature: String(repeating: "0", count: 64)),
                try await fixture.post("/api/v1/agent/heartbeat", forVM2, as: fixture.vm2, timestamp: Date().addingTimeInterval(-900)),
                try await fixture.post("/api/v1/agent/heartbeat", forVM2, as: UUID(), signedBy: fixture.vm2),
            ]
            XCTAssertEqual(
                forged.map(\.status), Array(repeating: .unauthorized, count: forged.count), forged.map(\.body.string).description)
            let statuses = try await AgentStatus.query(on: app.db).count()
            XCTAssertEqual(statuses, 0, "nothing stored")
            let refusals = try await LogEntry.query(on: app.db).filter(\.$action == "agent.refused").all()
            XCTAssertEqual(refusals.count, forged.count)
            XCTAssertTrue(refusals.allSatisfy { $0.kind == LogKind.error.rawValue })
            let secret = try await fixture.secret(fixture.vm1)
            XCTAssertFalse(refusals.contains { $0.details.contains(secret) }, "the credential never reaches the log")
            let genuine = try await fixture.post("/api/v1/agent/heartbeat", forVM2, as: fixture.vm2)
            XCTAssertEqual(genuine.status, .ok)
        }
    }

    /// A loop of forgeries from one address writes at most `burst` audit entries a minute; the
    /// next entry after that counts the ones not logged.
    func testRefusalsFromOneAddressAreAuditedAtMostBurstTimesAMinute() async throws {
        try await Self.run { app in
            let fixture = try await AgentFixture.make(app)
            let forVM2 = AgentFixture.heartbeat(vm: fixture.vm2, services: [])
            for _ in 0..<(RefusalAuditLimit.burst + 15) {
                let answer = try await fixture.post(
                    "/api/v1/agent/heartbeat", forVM2, as: fixture.vm2, signature: String(repeating: "0", count: 64))
                XCTAssertEqual(answer.status, .unauthorized)
            }
            let logged = try await LogEntry.query(on: app.db).filter(\.$action == "agent.refused").count()
            XCTAssertEqual(logged, RefusalAuditLimit.burst)
        }
        let limit = RefusalAuditLimit()
        let start = Date()
        for _ in 0..<RefusalAuditLimit.burst { XCTAssertEqual(limit.admit("10.0.0.9", now: start), .log(unlogged: 0)) }
        XCTAssertEqual(limit.admit("10.0.0.9", now: start.addingTimeInterval(1)), .count)
        XCTAssertEqual(limit.admit("10.0.0.9", now: start.addingTimeInterval(2)), .count)
        XCTAssertEqual(limit.admit("10.0.0.8", now: start.addingTimeInterval(2)), .log(unlogged: 0), "another address has its own budget")
        XCTAssertEqual(limit.admit("10.0.0.9", now: start.addingTimeInterval(RefusalAuditLimit.window)), .log(unlogged: 2))
    }

    /// Retention forgets agent events, notification events and finished deliveries (with their
    /// attempts) older than 90 days, and never mail still queued or events held for a digest.
    func testRetentionRemovesOnlyOldFinishedRecords() async throws {
        try await Self.run { app in
            let fixture = try await AgentFixture.make(app)
            let old = Date().addingTimeInterval(-Double(MonitoringRetention.days + 1) * 86_400)
            for (sequence, received) in [(1, old), (2, Date())] {
                let event = AgentEventRecord()
                event.vmID = fixture.vm1
                event.epoch = "e"
                event.sequence = Int64(sequence)
                event.kind = "restarted"
                event.service = "redis"
                event.attempts = 1
                event.occurredAt = received
                event.receivedAt = received
                try await event.create(on: app.db)
            }
            var deliveries: [DeliveryStatus: UUID] = [:]
            for status in [DeliveryStatus.delivered, .failed, .queued] {
                let delivery = NotificationDelivery(
                    messageID: UUID(), kind: "restarted", channel: .email, webhookID: nil, target: "owner@example.com", subject: "s",
                    body: "b", now: old)
                delivery.status = status
                try await delivery.create(on: app.db)
                let id = try delivery.requireID()
                try await NotificationAttempt(
                    deliveryID: id, number: 1, at: old, outcome: .retry, statusCode: 421, error: nil, milliseconds: 5
                ).create(on: app.db)
                deliveries[status] = id
            }
            for state in [NotificationEventState.sent, .pending] {
                let event = NotificationEventRecord()
                event.fingerprint = "f-\(state.rawValue)"
                event.stream = "web-01/redis"
                event.source = "agent"
                event.kind = "restarted"
                event.occurredAt = old
                event.state = state
                try await event.create(on: app.db)
            }
            try await NotificationDelivery.query(on: app.db).set(\.$createdAt, to: old).update()
            try await NotificationEventRecord.query(on: app.db).set(\.$createdAt, to: old).update()

            let removed = try await MonitoringRetention.run(database: app.db)
            XCTAssertEqual(removed, 1 + 1 + 2 * 2, "one agent event, one notification event, two deliveries with an attempt each")
            let events = try await AgentEventRecord.query(on: app.db).all(\.$sequence)
            XCTAssertEqual(events, [2])
            let kept = try await NotificationDelivery.query(on: app.db).all(\.$id)
            XCTAssertEqual(kept, [deliveries[.queued]])
            let attempts = try await NotificationAttempt.query(on: app.db).all(\.$delivery.$id)
            XCTAssertEqual(attempts, [deliveries[.queued]!])
            let states = try await NotificationEventRecord.query(on: app.db).all(\.$state)
            XCTAssertEqual(states, [.pending])
            let again = try await MonitoringRetention.run(database: app.db)
            XCTAssertEqual(again, 0)
        }
    }

    func testEventsAreStoredAuditedAndNotifiedOnceHoweverOftenTheyArrive() async throws {
        try await Self.run { app in
            let fixture = try await AgentFixture.make(app)
            let first = AgentFixture.events(vm: fixture.vm1, [(1, "restarted", 1), (2, "gave_up", 5)])
            let answer = try await fixture.post("/api/v1/agent/events", first, as: fixture.vm1)
            XCTAssertEqual(answer.status, .ok, answer.body.string)
            XCTAssertEqual(try fixture.admin.decode(API.AgentAnswer.self, answer).acknowledged, 2)
            // The answer was lost: the agent sends the same events again, and a new one.
            let again = AgentFixture.events(vm: fixture.vm1, [(1, "restarted", 1), (2, "gave_up", 5), (3, "recovered_from_giving_up", 5)])
            let second = try await fixture.post("/api/v1/agent/events", again, as: fixture.vm1)
            XCTAssertEqual(try fixture.admin.decode(API.AgentAnswer.self, second).acknowledged, 3)
            let stored = try await AgentEventRecord.query(on: app.db).sort(\.$sequence).all()
            XCTAssertEqual(stored.map(\.sequence), [1, 2, 3])
            let audit = try await LogEntry.query(on: app.db).filter(
                \.$action ~~ ["agent.restarted", "agent.gave_up", "agent.recovered_from_giving_up"]
            )
            .sort(\.$time).all()
            XCTAssertEqual(audit.map(\.action), ["agent.restarted", "agent.gave_up", "agent.recovered_from_giving_up"])
            XCTAssertEqual(audit.map(\.kind), [LogKind.operation.rawValue, LogKind.error.rawValue, LogKind.operation.rawValue])
            XCTAssertTrue(audit.allSatisfy { $0.vmName == "web-01" && $0.vmRole == "web" })
            XCTAssertTrue(
                audit[0].details.contains("service redis on 10.77.9.11 restarted after 1 attempt; outage 2.0 s"), audit[0].details)
            XCTAssertTrue(audit[1].details.contains("gave up after 5 attempts"), audit[1].details)
            let notified = try await NotificationEventRecord.query(on: app.db).filter(\.$source == "agent").all()
            XCTAssertEqual(notified.map(\.kind).sorted(), ["gave_up", "recovered_from_giving_up", "restarted"])
            XCTAssertEqual(Set(notified.compactMap(\.owners)), [fixture.ownerName], "the service's owners hear about it")
        }
    }

    func testMalformedEventsAreDroppedAndAcknowledged() async throws {
        try await Self.run { app in
            let fixture = try await AgentFixture.make(app)
            let good = AgentFixture.events(vm: fixture.vm1, [(1, "restarted", 1)])
            let batch = good.replacingOccurrences(
                of: "]}",
                with: ",{\"kind\":\"restarted\",\"service\":\"redis\\n$(reboot)\",\"attempts\":1,\"occurred_at\":1790000009,"
                    + "\"sequence\":2,\"epoch\":\"0a1b2c\"}]}")
            let answer = try await fixture.post("/api/v1/agent/events", batch, as: fixture.vm1)
            XCTAssertEqual(try fixture.admin.decode(API.AgentAnswer.self, answer).acknowledged, 2)
            let stored = try await AgentEventRecord.query(on: app.db).count()
            XCTAssertEqual(stored, 1)
            let refused = try await LogEntry.query(on: app.db).filter(\.$action == "agent.event.refused").count()
            XCTAssertEqual(refused, 1)
        }
    }

    func testSilentAfterThreeMissedHeartbeatsOnceThenBack() async throws {
        try await Self.run { app in
            let fixture = try await AgentFixture.make(app)
            let heartbeat = AgentFixture.heartbeat(vm: fixture.vm1, services: [("redis", "running", 0)])
            _ = try await fixture.post("/api/v1/agent/heartbeat", heartbeat, as: fixture.vm1)
            let now = Date()
            var marked = try await AgentSilence.markSilent(database: app.db, notifications: app.notifications, logger: app.logger, now: now)
            XCTAssertEqual(marked, 0, "heard within three heartbeats")
            marked = try await AgentSilence.markSilent(
                database: app.db, notifications: app.notifications, logger: app.logger, now: now.addingTimeInterval(16))
            XCTAssertEqual(marked, 1)
            marked = try await AgentSilence.markSilent(
                database: app.db, notifications: app.notifications, logger: app.logger, now: now.addingTimeInterval(30))
            XCTAssertEqual(marked, 0, "one silence is reported once")
            let shown = try fixture.admin.decode(
                API.VMServices.self, try await fixture.admin.request(.GET, "/api/v1/vms/\(fixture.vm1)/services"))
            XCTAssertEqual(shown.agent.state, "silent")
            _ = try await fixture.post("/api/v1/agent/heartbeat", heartbeat, as: fixture.vm1)
            let actions = try await LogEntry.query(on: app.db).filter(\.$action ~~ ["agent.silent", "agent.back"]).sort(\.$time).all()
            XCTAssertEqual(actions.map(\.action), ["agent.silent", "agent.back"])
            let kinds = try await NotificationEventRecord.query(on: app.db).all().map(\.kind)
            XCTAssertEqual(Set(kinds), ["agent_silent", "agent_back"])
        }
    }

    func testRoleMonitorConfigurationIsValidatedStrictly() async throws {
        try await Self.run { app in
            let fixture = try await AgentFixture.make(app)
            let good = MonitoredService(
                process: "redis-server", name: "redis", start: "redis-server /etc/redis/redis.conf --daemonize yes",
                probe: .init(tcp: "127.0.0.1:6379", timeoutSeconds: 2), attempts: 5, graceSeconds: 10, owners: [fixture.ownerID])
            var hostile: [MonitoredService] = []
            for name in ["redis; reboot", "$(reboot)", "a\nb", "-rf", String(repeating: "a", count: 65)] {
                hostile.append(with(good) { $0.name = name })
            }
            hostile.append(with(good) { $0.process = "redis`id`" })
            hostile.append(with(good) { $0.pidfile = "/run/x.pid" })
            hostile.append(
                with(good) {
                    $0.process = nil
                    $0.pidfile = "/run/../etc/shadow"
                })
            hostile.append(
                with(good) {
                    $0.process = nil
                    $0.unit = "redis;reboot"
                })
            hostile.append(with(good) { $0.start = "redis-server\nreboot" })
            hostile.append(with(good) { $0.probe = .init(tcp: "127.0.0.1:6379; reboot") })
            hostile.append(with(good) { $0.probe = .init(http: "file:///etc/shadow") })
            hostile.append(with(good) { $0.probe = .init(http: "http://x/ y") })
            hostile.append(with(good) { $0.attempts = 0 })
            hostile.append(with(good) { $0.owners = [UUID()] })
            for service in hostile {
                let answer = try await fixture.admin.request(.PATCH, "/api/v1/roles/\(fixture.roleID)", json: fixture.roleInput([service]))
                XCTAssertEqual(answer.status, .badRequest, "\(service): \(answer.body.string)")
            }
            let unchanged = try await RoleMonitors(database: app.db).services(of: fixture.roleID)
            XCTAssertEqual(unchanged, [fixture.watched], "refused input changes nothing")
            let duplicate = try await fixture.admin.request(
                .PATCH, "/api/v1/roles/\(fixture.roleID)", json: fixture.roleInput([good, good]))
            XCTAssertEqual(duplicate.status, .badRequest)
            let saved = try await fixture.admin.request(.PATCH, "/api/v1/roles/\(fixture.roleID)", json: fixture.roleInput([good]))
            XCTAssertEqual(saved.status, .ok, saved.body.string)
            XCTAssertEqual(try fixture.admin.decode(API.RoleBody.self, saved).monitor, [good])
            let listed = try fixture.admin.decode([API.RoleBody].self, try await fixture.admin.request(.GET, "/api/v1/roles"))
            XCTAssertEqual(listed.first?.monitor, [good])
        }
    }

    func testAgentConfigurationFileCarriesTheRolesServicesAndANewCredential() async throws {
        try await Self.run { app in
            let fixture = try await AgentFixture.make(app)
            let before = try await fixture.secret(fixture.vm1)
            let found = try await VM.find(fixture.vm1, on: app.db)
            let vm = try XCTUnwrap(found)
            let credentials = AgentCredentials(database: app.db, secrets: app.flotilla.secrets, identities: app.agentIdentities)
            let text = try await credentials.configurationFile(for: vm, platformURL: "https://flotilla.example")
            let file = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            let after = try await fixture.secret(fixture.vm1)
            XCTAssertNotEqual(before, after)
            XCTAssertEqual(file?["credential"] as? String, after)
            XCTAssertEqual(file?["vm_id"] as? String, fixture.vm1.uuidString)
            let services = try XCTUnwrap(file?["services"] as? [[String: Any]])
            XCTAssertEqual(services.first?["process"] as? String, "redis-server")
            XCTAssertEqual(services.first?["attempts"] as? Int, 3)
            // The old credential no longer signs.
            let heartbeat = AgentFixture.heartbeat(vm: fixture.vm1, services: [])
            let stale = try await fixture.post("/api/v1/agent/heartbeat", heartbeat, as: fixture.vm1, secret: before)
            XCTAssertEqual(stale.status, .unauthorized)
        }
    }

    func testInstallAndRoleChangesAreJobsWithAStepPerVM() async throws {
        try await Self.run { app in
            let fixture = try await AgentFixture.make(app)
            for bad in ["ftp://x", "http://x/ y", "http://user@x", "http://x\r\nX-Evil: 1", ""] {
                let answer = try await fixture.admin.request(
                    .POST, "/api/v1/vms/\(fixture.vm1)/agent", json: API.AgentInstallInput(platformURL: bad))
                XCTAssertEqual(answer.status, .badRequest, bad)
            }
            let install = try await fixture.admin.request(
                .POST, "/api/v1/vms/\(fixture.vm1)/agent", json: API.AgentInstallInput(platformURL: "http://10.77.0.1:8080"))
            XCTAssertEqual(install.status, .accepted, install.body.string)
            let installJob = try fixture.admin.decode(API.JobReference.self, install).jobID
            let installSteps = try await JobStep.query(on: app.db).filter(\.$job.$id == installJob).all()
            XCTAssertEqual(installSteps.map(\.kind), ["agent.install"])
            // Both VMs have agents: a changed role reaches both, one step each.
            let changed = with(fixture.watched) { $0.attempts = 7 }
            let saved = try await fixture.admin.request(.PATCH, "/api/v1/roles/\(fixture.roleID)", json: fixture.roleInput([changed]))
            XCTAssertEqual(saved.status, .ok, saved.body.string)
            let job = try await Job.query(on: app.db).filter(\.$kind == "agent.configure").first()
            let pushJob = try XCTUnwrap(job)
            let steps = try await JobStep.query(on: app.db).filter(\.$job.$id == pushJob.requireID()).all()
            XCTAssertEqual(steps.compactMap(\.vmName).sorted(), ["web-01", "web-02"])
            XCTAssertEqual(Set(steps.compactMap(\.kind)), ["agent.configure"])
        }
    }

    /// With `FLOTILLA_AGENT_URL` set, a new VM's job installs the agent after the VM is made
    /// (and reboots it); adopted VMs get an install job without a reboot. Unset, nothing changes.
    func testCreatedAndAdoptedVMsGetTheAgentWhenAPlatformURLIsSet() async throws {
        for platformURL in ["http://10.77.0.1:8080", nil] {
            var environment = ["FLOTILLA_SYNC_SECONDS": "0", "FLOTILLA_REACHABILITY_SECONDS": "0"]
            environment["FLOTILLA_AGENT_URL"] = platformURL
            try await TestApp.run(environment, outside: OutsideSystems(vsphere: InMemoryVSphere(), shell: InMemoryGuestShell())) { app in
                let fixture = try await AgentFixture.make(app)
                let environmentID = try await VM.find(fixture.vm1, on: app.db)?.$environment.id
                let input = VMs.Input(
                    hostName: "web-03", ip: "10.77.9.13", netmask: "16", gateway: "10.77.0.1", dns1: nil, dns2: nil, role: "web",
                    password: "Guest-pass-1", passwordConfirmation: "Guest-pass-1", notes: nil)
                let created = try await fixture.admin.request(
                    .POST, "/api/v1/environments/\(try XCTUnwrap(environmentID))/vms", json: input)
                XCTAssertEqual(created.status, .accepted, created.body.string)
                let jobID = try fixture.admin.decode(API.NewVMAnswer.self, created).jobID
                let steps = try await JobStep.query(on: app.db).filter(\.$job.$id == jobID).sort(\.$position).all()
                if platformURL == nil {
                    XCTAssertEqual(steps.map(\.kind), ["vm.create"])
                } else {
                    XCTAssertEqual(steps.map(\.kind), ["vm.create", "agent.install"])
                    XCTAssertEqual(steps.map(\.phase), [0, 1], "the agent goes on once the VM exists")
                    let parameters = try JSONDecoder().decode(
                        AgentInstallStep.Parameters.self, from: Data(try XCTUnwrap(steps.last?.parameters).utf8))
                    XCTAssertEqual(parameters.platformURL, platformURL)
                    XCTAssertEqual(parameters.reboot, true)
                }
                let vms = try await VM.query(on: app.db).filter(\.$id ~~ [fixture.vm1, fixture.vm2]).with(\.$role).all()
                let rollout = AgentRollout(database: app.db, jobs: app.flotilla.jobs, actor: .system, logger: app.logger, programPath: "/x")
                let adoptedJob = try await rollout.installAdopted(
                    vms, plan: AgentInstallPlan(platformURL: app.flotilla.config.agentPlatformURL, programPath: "/x"))
                if platformURL == nil {
                    XCTAssertNil(adoptedJob)
                } else {
                    let adoptedSteps = try await JobStep.query(on: app.db).filter(\.$job.$id == XCTUnwrap(adoptedJob)).all()
                    XCTAssertEqual(adoptedSteps.compactMap(\.vmName).sorted(), ["web-01", "web-02"])
                    let reboots = try adoptedSteps.map {
                        try JSONDecoder().decode(AgentInstallStep.Parameters.self, from: Data(($0.parameters ?? "").utf8)).reboot
                    }
                    XCTAssertEqual(reboots, [false, false], "adopted VMs are not rebooted")
                }
            }
        }
    }

    /// Settings → Roles → Monitor: a service added from the form, shown, replaced by name,
    /// refused with hostile values (nothing changes), removed; each change audited.
    func testRoleMonitorPageAddsReplacesRefusesAndRemovesServices() async throws {
        try await Self.run { app in
            let fixture = try await AgentFixture.make(app)
            let page = "/settings/roles/\(fixture.roleID)/monitor"
            let shown = try await fixture.admin.request(.GET, page)
            XCTAssertEqual(shown.status, .ok)
            XCTAssertTrue(shown.body.string.contains("redis-server"), "the role's watched service is listed")
            let form: [(String, String)] = [
                ("name", "web"), ("findBy", "unit"), ("find", "nginx.service"), ("probeKind", "http"),
                ("probe", "http://127.0.0.1:80/health"), ("probeStatus", "204"), ("attempts", "4"), ("graceSeconds", "20"),
                ("owners", "owner"),
            ]
            let added = try await fixture.admin.submit(page, form)
            XCTAssertEqual(added.status, .seeOther, added.body.string)
            var services = try await RoleMonitors(database: app.db).services(of: fixture.roleID)
            XCTAssertEqual(services.map(\.name), ["redis", "web"])
            let web = try XCTUnwrap(services.last)
            XCTAssertEqual(web.unit, "nginx.service")
            XCTAssertEqual(web.probe, MonitoredService.Probe(http: "http://127.0.0.1:80/health", status: 204))
            XCTAssertEqual(web.owners, [fixture.ownerID])
            XCTAssertEqual(web.attempts, 4)

            let replaced = try await fixture.admin.submit(page, form.map { $0.0 == "attempts" ? ($0.0, "9") : $0 })
            XCTAssertEqual(replaced.status, .seeOther)
            services = try await RoleMonitors(database: app.db).services(of: fixture.roleID)
            XCTAssertEqual(services.map(\.attempts), [3, 9], "same name: replaced, not added")

            for hostile in [
                [("name", "web; rm -rf /"), ("find", "nginx")], [("name", "x"), ("find", "nginx\nX-Evil: 1")],
                [("name", "x"), ("findBy", "pidfile"), ("find", "../etc/passwd"), ("start", "true")],
                [("name", "x"), ("find", "x"), ("start", "true"), ("owners", "nobody-here")],
                [("name", "x"), ("find", "x"), ("start", "true"), ("probeKind", "tcp"), ("probe", "host:99999")],
            ] {
                let refused = try await fixture.admin.submit(page, hostile)
                XCTAssertEqual(refused.status, .badRequest, hostile.description)
                XCTAssertTrue(refused.body.string.contains("class=\"error\""))
            }
            let unchanged = try await RoleMonitors(database: app.db).services(of: fixture.roleID)
            XCTAssertEqual(unchanged, services, "refused input changes nothing")

            let removed = try await fixture.admin.submit(page + "/delete", [("name", "web")])
            XCTAssertEqual(removed.status, .seeOther)
            let left = try await RoleMonitors(database: app.db).services(of: fixture.roleID).map(\.name)
            XCTAssertEqual(left, ["redis"])
            let audited = try await LogEntry.query(on: app.db).filter(\.$action == "settings.role.monitor").count()
            XCTAssertEqual(audited, 3)
            let pushes = try await Job.query(on: app.db).filter(\.$kind == "agent.configure").count()
            XCTAssertEqual(pushes, 3, "every change goes to the role's agents")
        }
    }

    /// The real application with vSphere and guests in memory (roles check their template there).
    private static func run(_ body: (Application) async throws -> Void) async throws {
        try await TestApp.run(
            ["FLOTILLA_SYNC_SECONDS": "0", "FLOTILLA_REACHABILITY_SECONDS": "0"],
            outside: OutsideSystems(vsphere: InMemoryVSphere(), shell: InMemoryGuestShell()), body)
    }

    private func with(_ service: MonitoredService, _ change: (inout MonitoredService) -> Void) -> MonitoredService {
        var changed = service
        change(&changed)
        return changed
    }
}

/// Two VMs of role "web" with agent credentials, a role watching redis, an owner with e-mail.
private struct AgentFixture {
    let app: Application
    let admin: TestClient
    let roleID: UUID
    let connectionID: UUID
    let vm1: UUID
    let vm2: UUID
    let ownerID: UUID
    let ownerName = "owner"
    let watched: MonitoredService

    static func make(_ app: Application) async throws -> AgentFixture {
        let admin = try TestClient(app)
        try await admin.signIn("admin", TestApp.adminPassword)
        let rows = try await MonitoredRows.create(on: app, role: "web", environment: "agents", owner: "owner")
        let (connection, role, owner) = (rows.connection, rows.role, rows.owner)
        var vms: [UUID] = []
        for (index, name) in ["web-01", "web-02"].enumerated() {
            let vm = try await rows.addVM(on: app, hostName: name, ip: "10.77.9.\(11 + index)")
            let id = try vm.requireID()
            _ = try await AgentCredentials(database: app.db, secrets: app.flotilla.secrets, identities: app.agentIdentities).issue(
                for: id, platformURL: "http://10.77.0.1:8080")
            vms.append(id)
        }
        let watched = MonitoredService(
            process: "redis-server", name: "redis", start: "redis-server --daemonize yes", attempts: 3, graceSeconds: 5,
            owners: [try owner.requireID()])
        try await RoleMonitors(database: app.db).save([watched], for: try role.requireID())
        return AgentFixture(
            app: app, admin: admin, roleID: try role.requireID(), connectionID: try connection.requireID(), vm1: vms[0], vm2: vms[1],
            ownerID: try owner.requireID(), watched: watched)
    }

    func secret(_ vm: UUID) async throws -> String {
        let found = try await AgentCredential.query(on: app.db).filter(\.$vmID == vm).first()
        return try app.flotilla.secrets.open(try XCTUnwrap(found).secretSealed)
    }

    func roleInput(_ services: [MonitoredService]) -> Roles.Input {
        Roles.Input(name: "web", connectionID: connectionID, template: "tpl-web", monitor: services)
    }

    /// Posts `body` as the agent of `vm`, signed with `signedBy`'s credential (or the given secret or signature).
    func post(
        _ path: String, _ body: String, as vm: UUID, signedBy: UUID? = nil, secret: String? = nil, signature: String? = nil,
        timestamp: Date = Date()
    ) async throws -> TestingHTTPResponse {
        let stamp = String(Int(timestamp.timeIntervalSince1970))
        var key = secret ?? ""
        if secret == nil { key = try await self.secret(signedBy ?? vm) }
        let message = Data("\(stamp)\nPOST\n\(path)\n\(body)".utf8)
        let code = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Data(key.utf8)))
        let client = try TestClient(app)
        return try await client.tester.performTest(
            request: TestingHTTPRequest(
                method: .POST, url: URI(string: path),
                headers: [
                    "Content-Type": "application/json", "X-Flotilla-Agent": vm.uuidString, "X-Flotilla-Timestamp": stamp,
                    "X-Flotilla-Signature": signature ?? code.map { String(format: "%02x", $0) }.joined(),
                ], body: ByteBuffer(string: body)))
    }

    static func heartbeat(vm: UUID, services: [(String, String, Int)]) -> String {
        let entries = services.map {
            "{\"name\":\"\($0.0)\",\"state\":\"\($0.1)\",\"restarts\":\($0.2),\"failures\":0,\"attempts\":0,\"since\":1790000000.5}"
        }
        return
            "{\"vm\":\"\(vm.uuidString)\",\"agent_version\":\"1\",\"sent_at\":1790000001,\"queued_events\":0,\"services\":[\(entries.joined(separator: ","))]}"
    }

    static func events(vm: UUID, _ events: [(Int, String, Int)]) -> String {
        let entries = events.map {
            "{\"kind\":\"\($0.1)\",\"service\":\"redis\",\"attempts\":\($0.2),\"outage_started_at\":1790000000,\"occurred_at\":\(1_790_000_000 + 2 * $0.0),"
                + "\"sequence\":\($0.0),\"epoch\":\"0a1b2c\"}"
        }
        return "{\"vm\":\"\(vm.uuidString)\",\"events\":[\(entries.joined(separator: ","))]}"
    }
}
