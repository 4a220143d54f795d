import Fluent
import Foundation
import Lab
import RemoteShell
import XCTVapor

@testable import App

/// The monitor agent end to end in the lab (SPEC MON-1..4, BEY-6; run under the lab lock): the
/// platform listens on the lab bridge and `FLOTILLA_AGENT_URL` points there, so VMs created
/// through the API get the agent, are rebooted, and their create job succeeds only after the
/// first heartbeat. Then, with aiosmtpd (STARTTLS and AUTH) as the mail server: a `kill -9`ed
/// redis is restarted and its owner mailed with host IP, service and attempts, one audit entry
/// per event; 50 more kills in a minute, within the rate-limit window, become one message; a role change adds
/// a service whose start command fails, pushed to every VM of the role (a step per VM) and
/// picked up without restarting the agent; it gives up (one mail) and its recovery, after it is
/// fixed by hand, is mailed too.
final class MonitoringLabTests: XCTestCase {
    static let lab = LabConfiguration(stateDirectory: "/var/lib/flotilla-lab-montest", roles: ["redis"], pollInterval: .milliseconds(250))
    /// Where the platform listens for agents: the lab bridge, which every guest reaches.
    static let agentURL = "http://10.77.0.1:18293"
    static let guestPassword = "Guest-pass-1"
    /// At most one message per service in this window: longer than the storm of kills takes.
    static let rateLimitSeconds = 90

    static let redis = MonitoredService(
        process: "redis-server", name: "redis",
        start:
            "mkdir -p /run/redis && chown redis:redis /run/redis && runuser -u redis -- redis-server /etc/redis/redis.conf --bind 0.0.0.0 --protected-mode no --daemonize yes --supervised no",
        probe: .init(tcp: "127.0.0.1:6379"), attempts: 5, graceSeconds: 5, owners: [])
    /// Starts only once /etc/flt-worker-fixed exists (the fix made by hand).
    static let worker = MonitoredService(
        pidfile: "/run/flt-worker.pid", name: "worker",
        start: "[ -f /etc/flt-worker-fixed ] && { sleep 86400 >/dev/null 2>&1 & echo $! > /run/flt-worker.pid; }",
        attempts: 3, graceSeconds: 1, owners: [])

    func testCreatedVMsReportTheirServicesAndOwnersHearOnce() async throws {
        let smtp = try NotificationSMTPServer()
        defer { smtp.stop() }
        try await Lab.withRunning(Self.lab) { vcsim in
            try smtp.start(starttls: true)
            let settings = [
                "FLOTILLA_AGENT_URL": Self.agentURL, "FLOTILLA_GUEST_BOOT_SECONDS": "60", "FLOTILLA_SMTP_HOST": "127.0.0.1",
                "FLOTILLA_SMTP_PORT": "\(smtp.port)", "FLOTILLA_SMTP_FROM": "flotilla@example.com", "FLOTILLA_SMTP_SECURITY": "starttls",
                "FLOTILLA_SMTP_USER": NotificationSMTPServer.user, "FLOTILLA_SMTP_PASSWORD": NotificationSMTPServer.password,
                "FLOTILLA_SMTP_CA_FILE": smtp.certificateAuthorityFile,
            ]
            try await TestApp.run(settings) { app in
                try await app.server.start(address: .hostname("10.77.0.1", port: 18293))
                do {
                    try await exercise(app, vcsim: vcsim, smtp: smtp)
                } catch {
                    await app.server.shutdown()
                    throw error
                }
                await app.server.shutdown()
            }
        }
    }

    private func exercise(_ app: Application, vcsim: VcsimProcess, smtp: NotificationSMTPServer) async throws {
        let admin = try TestClient(app)
        try await admin.signIn("admin", TestApp.adminPassword)
        let owner = try await admin.request(
            .POST, "/api/v1/users",
            json: API.NewUser(
                username: "olga", password: "password-123", passwordConfirmation: "password-123", role: "ordinary",
                email: "olga@example.com", fullName: "Olga Owner"))
        XCTAssertEqual(owner.status, .created, owner.body.string)
        let found = try await User.query(on: app.db).filter(\.$username == "olga").first()
        let ownerID = try XCTUnwrap(found).requireID()
        let limited = try await admin.request(
            .PATCH, "/api/v1/notifications/settings", json: API.NotificationSettingsChange(rateLimitSeconds: Self.rateLimitSeconds))
        XCTAssertEqual(limited.status, .ok, limited.body.string)
        let connection = try admin.decode(
            API.ConnectionBody.self,
            try await admin.request(
                .POST, "/api/v1/connections",
                json: Connections.Input(
                    name: "lab", url: vcsim.url, username: vcsim.username, password: vcsim.password, thumbprint: vcsim.thumbprint)))
        var redis = Self.redis
        redis.owners = [ownerID]
        var roleInput = Roles.Input(
            name: "redis", connectionID: connection.id, template: "tpl-redis", sshUser: "root", services: "redis-server", monitor: [redis])
        let role = try await admin.request(.POST, "/api/v1/roles", json: roleInput)
        XCTAssertEqual(role.status, .created, role.body.string)
        let roleID = try admin.decode(API.RoleBody.self, role).id
        let environment = try admin.decode(
            API.EnvironmentBody.self,
            try await admin.request(.POST, "/api/v1/environments", json: API.EnvironmentInput(name: "mon", description: "lab")))

        // MON-1: two VMs created through the API; each job ends with the agent's first heartbeat after the reboot.
        let created = ContinuousClock.now
        var vms: [(id: UUID, ip: String, job: UUID)] = []
        for (name, ip) in [("mon-01", "10.77.5.30"), ("mon-02", "10.77.5.31")] {
            let answer = try await admin.request(
                .POST, "/api/v1/environments/\(environment.id)/vms",
                json: VMs.Input(
                    hostName: name, ip: ip, netmask: "16", gateway: "10.77.0.1", dns1: "10.77.0.1", dns2: nil, role: "redis",
                    password: Self.guestPassword, passwordConfirmation: Self.guestPassword, notes: nil))
            XCTAssertEqual(answer.status, .accepted, answer.body.string)
            let body = try admin.decode(API.NewVMAnswer.self, answer)
            vms.append((body.vm.id, ip, body.jobID))
        }
        for vm in vms {
            let job = try await waitForJob(admin, vm.job, timeout: .seconds(150))
            XCTAssertEqual(job.status, "succeeded", job.steps?.map(\.log).joined(separator: "\n") ?? "")
            XCTAssertEqual(job.steps?.map(\.kind), ["vm.create", "agent.install"])
            let install = try XCTUnwrap(job.steps?.last?.log)
            XCTAssertTrue(install.contains("first heartbeat from the agent"), install)
            let heartbeat = try await AgentStatus.query(on: app.db).filter(\.$vmID == vm.id).first()
            let finished = try XCTUnwrap(job.finishedAt)
            XCTAssertLessThanOrEqual(try XCTUnwrap(heartbeat?.lastHeartbeatAt), finished.addingTimeInterval(1))
            print("monitoring lab: \(install.split(separator: "\n").last ?? "")")
        }
        print("monitoring lab: two VMs created, agent installed, rebooted and heard in \(ContinuousClock.now - created)")
        let (vmID, ip, _) = vms[0]
        let guest = try await SSHConnection.connect(
            to: SSHTarget(host: ip, user: "root", authentication: .password(Self.guestPassword)), hostKeyStore: InMemoryHostKeyStore(),
            options: SSHConnectionOptions(connectTimeout: .seconds(3), handshakeTimeout: .seconds(5)))
        defer { Task { await guest.close() } }
        let starts = try await guest.run(.script("grep -c 'started (pid' /var/log/flotilla-agent.log"), timeout: .seconds(10))
        XCTAssertEqual(starts.output, "2\n", "the job ended with the agent started at boot, after the one the install started")
        func events(_ kind: String) async throws -> [AgentEventRecord] {
            try await AgentEventRecord.query(on: app.db).filter(\.$vmID == vmID).filter(\.$kind == kind).sort(\.$sequence).all()
        }
        func audited(_ action: String) async throws -> Int {
            try await LogEntry.query(on: app.db).filter(\.$action == action).filter(\.$vmName == "mon-01").count()
        }
        func mails(_ service: String) throws -> [NotificationSMTPServer.Message] {
            try smtp.messages().filter { $0.subject.contains("\(service) on mon-01 (\(ip))") }
        }

        // One kill -9: redis is back, the owner hears of it with host IP, service and attempts.
        let killed = Date()
        let kill = try await guest.run(.script(#"kill -9 "$(cat /run/redis/redis-server.pid)""#), timeout: .seconds(10))
        XCTAssertTrue(kill.succeeded, kill.errorOutput)
        try await waitFor("the owner's mail", timeout: .seconds(20)) { (try? mails("redis").count) == 1 }
        print(
            String(
                format: "monitoring lab: kill -9 of redis → owner's mail stored in aiosmtpd after %.2f s", Date().timeIntervalSince(killed))
        )
        let mail = try XCTUnwrap(try mails("redis").first)
        XCTAssertEqual(mail.rcpt_tos, ["olga@example.com"])
        XCTAssertTrue(mail.tls && mail.authenticated, "STARTTLS and AUTH")
        XCTAssertTrue(mail.subject.contains("redis on mon-01 (\(ip)) was restarted after 1 attempt"), mail.subject)
        for line in ["Host IP:  \(ip)", "Service:  redis", "Attempts: 1"] {
            XCTAssertTrue(mail.body?.contains(line) ?? false, "\(line) in \(mail.body ?? "")")
        }

        // MON-2: the role gains a service; both agents get it without a restart.
        let agentPID = try await guest.run(.script("cat /var/lib/flotilla-agent/pid"), timeout: .seconds(10)).output
        var worker = Self.worker
        worker.owners = [ownerID]
        roleInput.monitor = [redis, worker]
        let pushStarted = ContinuousClock.now
        let changed = try await admin.request(.PATCH, "/api/v1/roles/\(roleID)", json: roleInput)
        XCTAssertEqual(changed.status, .ok, changed.body.string)
        let pushed = try await Job.query(on: app.db).filter(\.$kind == "agent.configure").first()
        let pushJob = try XCTUnwrap(pushed).requireID()
        let push = try await waitForJob(admin, pushJob, timeout: .seconds(60))
        XCTAssertEqual(push.status, "succeeded")
        XCTAssertEqual(push.steps?.compactMap(\.vmName).sorted(), ["mon-01", "mon-02"], "a step per VM of the role")
        XCTAssertEqual(push.steps?.map(\.status), ["succeeded", "succeeded"])
        for vm in vms {
            try await waitFor("the agent on \(vm.ip) reports the new service", timeout: .seconds(15)) {
                let services = try? admin.decode(API.VMServices.self, try await admin.request(.GET, "/api/v1/vms/\(vm.id)/services"))
                return services?.services.contains { $0.name == "worker" } ?? false
            }
        }
        print("monitoring lab: role change → pushed to 2 VMs and reported by both agents in \(ContinuousClock.now - pushStarted)")
        let samePID = try await guest.run(.script("cat /var/lib/flotilla-agent/pid"), timeout: .seconds(10)).output
        XCTAssertEqual(samePID, agentPID, "picked up without restarting the agent")

        // The worker cannot start: 3 attempts, then one "gave up" mail; fixed by hand, it recovers.
        try await waitFor("gave up", timeout: .seconds(30)) { (try? await events("gave_up").count) == 1 }
        let gaveUp = try await events("gave_up")
        XCTAssertEqual(gaveUp.map(\.attempts), [3])
        try await waitFor("the gave-up mail", timeout: .seconds(15)) { (try? mails("worker").count) == 1 }
        XCTAssertTrue(try mails("worker").first?.subject.contains("is down: gave up restarting after 3 attempts") ?? false)
        let fixed = try await guest.run(
            .script(#"touch /etc/flt-worker-fixed && sh -c "$1""#, arguments: [try XCTUnwrap(Self.worker.start)]), timeout: .seconds(10))
        XCTAssertTrue(fixed.succeeded, fixed.errorOutput)
        try await waitFor("recovered", timeout: .seconds(5)) { (try? await events("recovered_from_giving_up").count) == 1 }

        // A storm within the window the first mail opened: for a minute redis is killed whenever
        // it runs, at most once a second, up to 50 times. Killed before a check saw it answer, a
        // restart counts as failed: the agent backs off and gives up (a crash loop). Whatever it
        // reports, the owner gets one message for all of it after the window.
        let calm = try await AgentEventRecord.query(on: app.db).filter(\.$vmID == vmID).filter(\.$service == "redis").count()
        let storm = try await guest.run(.script(#"python3 -c "$1""#, arguments: [Self.killLoop]), timeout: .seconds(90))
        XCTAssertTrue(storm.succeeded, storm.errorOutput)
        print("monitoring lab: storm: \(storm.output.trimmingCharacters(in: .whitespacesAndNewlines))")

        // While the window runs: the monitor commands of the real flotctl against this server.
        try await useTheClient(on: vms[1].ip)

        // After the window: one message for the storm's events, and the worker's recovery.
        try await waitFor("the storm's message and the recovery mail", timeout: .seconds(Self.rateLimitSeconds + 30)) {
            (try? mails("redis").count) == 2 && (try? mails("worker").count) == 2
        }
        try await Task.sleep(for: .seconds(3))  // a third message would have come by now
        let stormEvents = try await AgentEventRecord.query(on: app.db).filter(\.$vmID == vmID).filter(\.$service == "redis")
            .sort(\.$sequence).all().dropFirst(calm)
        let redisMails = try mails("redis")
        XCTAssertEqual(redisMails.count, 2, "one mail, then one for the storm: \(redisMails.map(\.subject))")
        print("monitoring lab: the storm's \(stormEvents.count) events (\(stormEvents.map(\.kind))) → \(redisMails.last?.subject ?? "-")")
        if stormEvents.count > 1 {
            XCTAssertTrue(
                redisMails.last?.subject.contains("\(stormEvents.count) events (digest)") ?? false, redisMails.last?.subject ?? "")
        }
        XCTAssertTrue(try mails("worker")[1].subject.contains("is running again after giving up"))
        XCTAssertEqual(try mails("worker").flatMap(\.rcpt_tos), ["olga@example.com", "olga@example.com"])

        // One audit entry per stored event, of each kind.
        for kind in ["restarted", "recovered", "gave_up", "recovered_from_giving_up"] {
            let stored = try await events(kind).count
            let entries = try await audited("agent.\(kind)")
            XCTAssertEqual(entries, stored, "one audit entry per \(kind) event")
        }
    }

    /// Kills redis-server for a minute, up to 50 times: whenever one runs, at most once a second.
    static let killLoop = #"""
        import os, signal, time
        def servers():
            found = []
            for entry in os.listdir("/proc"):
                try:
                    if entry.isdigit() and open("/proc/%s/comm" % entry).read().strip() == "redis-server":
                        found.append(int(entry))
                except OSError:
                    pass
            return found
        start, kills, last = time.time(), 0, 0.0
        while kills < 50 and time.time() - start < 60:
            running = servers()
            if running and time.time() - last >= 1.0:
                for pid in running:
                    os.kill(pid, signal.SIGKILL)
                kills, last = kills + 1, time.time()
            time.sleep(0.02)
        print("%d kill -9 in %.1f s" % (kills, time.time() - start))
        """#

    /// `flotctl monitor …` as a user runs it: the role's services, a VM's services, stop and
    /// start through the agent, a refused hostile change, and a test mail delivered by aiosmtpd.
    private func useTheClient(on ip: String) async throws {
        let program = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/flotctl").path
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("flotctl-monitor-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        func flotctl(_ arguments: [String], input: String = "") throws -> (status: Int32, output: String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = arguments
            process.environment = ["XDG_CONFIG_HOME": home, "PATH": "/usr/bin:/bin"]
            let output = Pipe()
            let standardInput = Pipe()
            process.standardOutput = output
            process.standardError = output
            process.standardInput = standardInput
            try process.run()
            standardInput.fileHandleForWriting.write(Data(input.utf8))
            try standardInput.fileHandleForWriting.close()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, text)
        }
        let login = try flotctl(["login", Self.agentURL, "--username", "admin", "--password-stdin"], input: TestApp.adminPassword + "\n")
        XCTAssertEqual(login.status, 0, login.output)
        let role = try flotctl(["monitor", "role-show", "redis"])
        XCTAssertEqual(role.status, 0, role.output)
        for text in ["redis", "process redis-server", "tcp 127.0.0.1:6379", "worker", "pidfile /run/flt-worker.pid", "olga"] {
            XCTAssertTrue(role.output.contains(text), "\(text) in \(role.output)")
        }
        let services = try flotctl(["monitor", "services", "mon-02"])
        XCTAssertEqual(services.status, 0, services.output)
        XCTAssertTrue(services.output.contains("Agent on mon-02: reporting"), services.output)
        XCTAssertNotNil(services.output.range(of: #"worker +gave_up"#, options: .regularExpression), services.output)
        let stopped = try flotctl(["monitor", "stop", "mon-02", "redis"])
        XCTAssertEqual(stopped.status, 0, stopped.output)
        let redisDown = try await redisState(on: ip)
        XCTAssertEqual(redisDown, "down", "stopped, and held: the agent does not start it again")
        let started = try flotctl(["monitor", "start", "mon-02", "redis"])
        XCTAssertEqual(started.status, 0, started.output)
        let redisUp = try await redisState(on: ip)
        XCTAssertEqual(redisUp, "up")
        let unknown = try flotctl(["monitor", "restart", "mon-02", "nginx"])
        XCTAssertEqual(unknown.status, 2, "no such watched service: \(unknown.output)")
        let hostile = home + "/hostile.json"
        try Data(#"[{"name": "x;reboot", "process": "x", "start": "true", "attempts": 1, "graceSeconds": 1, "owners": []}]"#.utf8)
            .write(to: URL(fileURLWithPath: hostile))
        let refused = try flotctl(["monitor", "role-set", "redis", "--file", hostile])
        XCTAssertEqual(refused.status, 2, refused.output)
        let unchanged = try flotctl(["monitor", "role-show", "redis", "--json"])
        XCTAssertTrue(unchanged.output.contains("\"worker\"") && !unchanged.output.contains("reboot"), unchanged.output)
        let mail = try flotctl(["monitor", "test-mail", "olga@example.com", "--wait"])
        XCTAssertEqual(mail.status, 0, mail.output)
        XCTAssertTrue(mail.output.contains("Test mail to olga@example.com: delivered"), mail.output)
    }

    /// "up" or "down": whether the guest's redis-server runs, asked over its root login.
    private func redisState(on ip: String) async throws -> String {
        let connection = try await SSHConnection.connect(
            to: SSHTarget(host: ip, user: "root", authentication: .password(Self.guestPassword)), hostKeyStore: InMemoryHostKeyStore(),
            options: SSHConnectionOptions(connectTimeout: .seconds(3), handshakeTimeout: .seconds(5)))
        defer { Task { await connection.close() } }
        let script: StaticString = #"kill -0 "$(cat /run/redis/redis-server.pid)" 2>/dev/null && echo up || echo down"#
        return try await connection.run(.script(script), timeout: .seconds(10)).output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func waitForJob(_ client: TestClient, _ id: UUID, timeout: Duration) async throws -> API.JobBody {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let job = try client.decode(API.JobBody.self, try await client.request(.GET, "/api/v1/jobs/\(id)"))
            if JobStatus(rawValue: job.status)?.isFinished == true { return job }
            try await Task.sleep(for: .milliseconds(250))
        }
        XCTFail("job \(id) did not finish within \(timeout)")
        throw FlotillaError(.unavailable, "job timeout")
    }

    private func waitFor(_ what: String, timeout: Duration, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTFail("not within \(timeout): \(what)")
    }
}
