import Fluent
import Foundation
import XCTVapor

@testable import App

/// Issue 11's storm, end to end on this machine (no root, no lab; about 80 s): the real agent
/// (`agent/flotilla-agent`) watches a real redis-server, reports to this platform over HTTP, and
/// the platform mails the owner through aiosmtpd (STARTTLS and AUTH). The agent starts redis
/// (the owner's first mail), then redis is `kill -9`ed 50 times in one minute. Its probe answers
/// within half a second of each start, so every kill is an outage of its own, restarted at once
/// (not a crash loop that gives up); the owner gets one digest of the 50 when the rate-limit
/// window has passed, not 50 mails.
final class AgentStormTests: XCTestCase {
    /// Longer than the storm, so all of it after the first message falls into one window.
    static let rateLimitSeconds = 70
    static let kills = 50

    func testFiftyKillsInAMinuteMailTheOwnerOnceThenOneDigest() async throws {
        let smtp = try NotificationSMTPServer()
        defer { smtp.stop() }
        try smtp.start(starttls: true)
        let port = try freeLoopbackPort()
        let settings = [
            "FLOTILLA_SYNC_SECONDS": "0", "FLOTILLA_REACHABILITY_SECONDS": "0", "FLOTILLA_SMTP_HOST": "127.0.0.1",
            "FLOTILLA_SMTP_PORT": "\(smtp.port)", "FLOTILLA_SMTP_FROM": "flotilla@example.com", "FLOTILLA_SMTP_SECURITY": "starttls",
            "FLOTILLA_SMTP_USER": NotificationSMTPServer.user, "FLOTILLA_SMTP_PASSWORD": NotificationSMTPServer.password,
            "FLOTILLA_SMTP_CA_FILE": smtp.certificateAuthorityFile,
        ]
        try await TestApp.run(settings, outside: OutsideSystems(vsphere: InMemoryVSphere(), shell: InMemoryGuestShell())) { app in
            try await app.server.start(address: .hostname("127.0.0.1", port: port))
            let guest = try StormGuest()
            do {
                try await storm(app, smtp: smtp, guest: guest, platformURL: "http://127.0.0.1:\(port)")
            } catch {
                guest.stop()
                await app.server.shutdown()
                throw error
            }
            guest.stop()
            await app.server.shutdown()
        }
    }

    private func storm(_ app: Application, smtp: NotificationSMTPServer, guest: StormGuest, platformURL: String) async throws {
        let admin = try TestClient(app)
        try await admin.signIn("admin", TestApp.adminPassword)
        let limited = try await admin.request(
            .PATCH, "/api/v1/notifications/settings", json: API.NotificationSettingsChange(rateLimitSeconds: Self.rateLimitSeconds))
        XCTAssertEqual(limited.status, .ok, limited.body.string)
        let vm = try await Self.vmWatchingRedis(app, guest: guest)
        let configuration = try await AgentCredentials(database: app.db, secrets: app.flotilla.secrets, identities: app.agentIdentities)
            .configurationFile(for: vm, platformURL: platformURL)
        try guest.startAgent(configuration: configuration)
        let vmID = try vm.requireID()
        func events() async throws -> [AgentEventRecord] {
            try await AgentEventRecord.query(on: app.db).filter(\.$vmID == vmID).sort(\.$sequence).all()
        }
        func mails() throws -> [NotificationSMTPServer.Message] {
            try smtp.messages().filter { $0.subject.contains("redis on storm-01 (\(guest.ip))") }
        }
        // The agent finds redis down and starts it: the owner's first mail opens the window.
        try await waitFor("redis started by the agent and the owner's first mail", timeout: .seconds(20)) {
            guard guest.answeringRedis() != nil, try mails().count == 1 else { return false }
            return try await events().count == 1
        }

        // 50 kill -9 in a minute: whenever a redis answers, at most one every 1.15 s.
        let started = Date()
        var kills = 0
        var last = Date.distantPast
        while kills < Self.kills, Date().timeIntervalSince(started) < 60 {
            if Date().timeIntervalSince(last) >= 1.15, let pid = guest.answeringRedis() {
                kill(pid, SIGKILL)
                kills += 1
                last = Date()
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        let stormSeconds = Date().timeIntervalSince(started)
        print(String(format: "agent storm: %d kill -9 of redis in %.1f s", kills, stormSeconds))
        XCTAssertEqual(kills, Self.kills, "redis was back in time for each kill")

        try await waitFor("an event per kill", timeout: .seconds(10)) { try await events().count >= Self.kills + 1 }
        let stored = try await events()
        XCTAssertEqual(stored.map(\.kind), Array(repeating: "restarted", count: Self.kills + 1), "each kill an outage of its own")
        XCTAssertEqual(Set(stored.map(\.attempts)), [1])
        let audited = try await LogEntry.query(on: app.db).filter(\.$action == "agent.restarted").count()
        XCTAssertEqual(audited, Self.kills + 1, "one audit entry per event")
        XCTAssertEqual(try mails().count, 1, "nothing more while the window runs")
        try await waitFor("the digest", timeout: .seconds(Self.rateLimitSeconds + 20)) { try mails().count >= 2 }
        try await Task.sleep(for: .seconds(3))  // a third message would have come by now
        let received = try mails()
        print("agent storm: the owner's mails: \(received.map(\.subject))")
        XCTAssertEqual(received.count, 2, "\(received.map(\.subject))")
        XCTAssertEqual(received.flatMap(\.rcpt_tos), ["olga@example.com", "olga@example.com"])
        XCTAssertTrue(received.first?.subject.contains("was restarted after 1 attempt") ?? false, received.first?.subject ?? "")
        XCTAssertTrue(
            received.last?.subject.contains("\(Self.kills) events (digest)") ?? false, received.last?.subject ?? "")
        XCTAssertTrue(guest.answeringRedis() != nil, "redis runs after the storm")
    }

    /// A VM of role "redis" whose watched redis (found by pidfile, TCP probe) is owned by olga.
    private static func vmWatchingRedis(_ app: Application, guest: StormGuest) async throws -> VM {
        let rows = try await MonitoredRows.create(on: app, role: "redis", environment: "storm", owner: "olga")
        let vm = try await rows.addVM(on: app, hostName: "storm-01", ip: guest.ip)
        let redis = MonitoredService(
            pidfile: guest.pidfile, name: "redis", start: guest.startCommand, probe: .init(tcp: "127.0.0.1:\(guest.redisPort)"),
            attempts: 5, graceSeconds: 5, owners: [try rows.owner.requireID()])
        try await RoleMonitors(database: app.db).save([redis], for: try rows.role.requireID())
        return vm
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

/// This machine standing in for a guest: a redis-server of its own (port, pidfile, folder) and
/// the agent with its configuration and state folders. Both are stopped with SIGKILL (children
/// of the test process inherit a blocked SIGTERM).
private final class StormGuest: @unchecked Sendable {
    let ip = "10.77.9.31"
    let directory: URL
    let redisPort: Int
    private var agent: Process?

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("agent-storm-\(UUID().uuidString)")
        for folder in ["etc", "state", "redis"] {
            try FileManager.default.createDirectory(
                at: directory.appendingPathComponent(folder), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        redisPort = try freeLoopbackPort()
    }

    var pidfile: String { directory.appendingPathComponent("redis/redis.pid").path }
    var startCommand: String {
        "redis-server --port \(redisPort) --bind 127.0.0.1 --daemonize yes --pidfile \(pidfile) --dir \(directory.path)/redis"
    }

    func startAgent(configuration: String) throws {
        try Data(configuration.utf8).write(to: directory.appendingPathComponent("etc/config.json"))
        let program = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("agent/flotilla-agent").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-I", "-S", program, "run"]
        process.environment = [
            "FLOTILLA_AGENT_CONFIG_DIR": directory.appendingPathComponent("etc").path,
            "FLOTILLA_AGENT_STATE_DIR": directory.appendingPathComponent("state").path, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        ]
        let log = directory.appendingPathComponent("agent.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = process.standardOutput
        process.standardInput = FileHandle.nullDevice
        try process.run()
        agent = process
    }

    /// The running redis-server's pid when it answers PING.
    func answeringRedis() -> pid_t? {
        guard let text = try? String(contentsOfFile: pidfile, encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)),
            kill(pid, 0) == 0
        else { return nil }
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return nil }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(redisPort).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0, send(socket, "PING\r\n", 6, 0) == 6 else { return nil }
        var reply = [UInt8](repeating: 0, count: 16)
        let count = recv(socket, &reply, reply.count, 0)
        return count >= 5 && String(decoding: reply[0..<5], as: UTF8.self) == "+PONG" ? pid : nil
    }

    func stop() {
        // No waitUntilExit: on a concurrency thread it can miss the exit and never return.
        if let agent { kill(agent.processIdentifier, SIGKILL) }
        agent = nil
        if let text = try? String(contentsOfFile: pidfile, encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            kill(pid, SIGKILL)
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
