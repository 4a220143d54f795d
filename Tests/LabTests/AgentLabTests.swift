import Foundation
import Lab
import RemoteShell
import XCTest

/// The monitor agent in a lab guest (SPEC MON-1, MON-3): installed the way the platform does
/// (program and configuration, then `flotilla-agent install`, which adds the /etc/rc.local hook),
/// it restarts a `kill -9`ed redis within 2 s, queues one event per restart while the platform
/// is unreachable, and comes back itself when the agent process is killed.
final class AgentLabTests: XCTestCase {
    private var lab: LabHarness!

    override func setUp() async throws {
        lab = try await LabHarness.start()
    }

    override func tearDown() async throws {
        try await lab?.tearDown()
    }

    static let agentPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("agent/flotilla-agent").path

    static let configuration = """
        {"platform_url": "http://10.77.0.1:9", "vm_id": "lab-redis", "credential": "lab-credential",
         "services": [{"name": "redis", "process": "redis-server", "attempts": 5, "grace_seconds": 5,
                       "probe": {"tcp": "127.0.0.1:6379"},
                       "start": "mkdir -p /run/redis && chown redis:redis /run/redis && runuser -u redis -- redis-server /etc/redis/redis.conf --bind 0.0.0.0 --protected-mode no --daemonize yes --supervised no"}]}
        """

    /// Kills redis 20 times inside the guest and measures, there, until the new server answers PING.
    static let killLoop = #"""
        import json, os, random, signal, socket, time
        def pid():
            try:
                value = int(open("/run/redis/redis-server.pid").read())
                os.kill(value, 0)
                return value
            except (OSError, ValueError):
                return None
        def pong():
            try:
                with socket.create_connection(("127.0.0.1", 6379), timeout=0.2) as c:
                    c.sendall(b"PING\r\n")
                    return c.recv(16).startswith(b"+PONG")
            except OSError:
                return False
        deadline = time.time() + 10
        while not (os.path.exists("/var/lib/flotilla-agent/status.json") and pid() and pong()) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(2)
        times = []
        for _ in range(20):
            old = pid()
            os.kill(old, signal.SIGKILL)
            killed = time.time()
            while not (pid() not in (None, old) and pong()) and time.time() - killed < 10:
                time.sleep(0.01)
            times.append(time.time() - killed)
            time.sleep(1.5 + random.random())
        time.sleep(1.5)
        queue = "/var/lib/flotilla-agent/queue"
        kinds = [json.load(open(os.path.join(queue, n)))["kind"] for n in sorted(os.listdir(queue))]
        print(json.dumps({"times": times, "kinds": kinds}))
        """#

    func testAgentRestartsKilledRedisWithinTwoSecondsAndComesBackItself() async throws {
        let address = "10.77.1.20"
        _ = try await lab.createGuest(name: "redis-01", role: "redis", address: address)
        let sshUp = await eventually(within: .seconds(10)) { await lab.canSSH(address) }
        XCTAssertTrue(sshUp, "guest never accepted SSH")
        let program = try String(contentsOfFile: Self.agentPath, encoding: .utf8)
        let connection = try await lab.connect(address)
        defer { Task { await connection.close() } }
        let installed = try await connection.run(
            .script(
                #"set -e; umask 022; printf '%s' "$1" > /usr/local/sbin/flotilla-agent; chmod 755 /usr/local/sbin/flotilla-agent; mkdir -p /etc/flotilla-agent; printf '%s' "$2" > /etc/flotilla-agent/config.json; /usr/local/sbin/flotilla-agent install"#,
                arguments: [program, Self.configuration]), timeout: .seconds(30))
        XCTAssertTrue(installed.succeeded, installed.errorOutput)
        XCTAssertEqual(installed.output, "rc.local\n")

        let measured = try await connection.run(.script(#"python3 -c "$1""#, arguments: [Self.killLoop]), timeout: .seconds(150))
        XCTAssertTrue(measured.succeeded, measured.errorOutput)
        struct Report: Decodable {
            var times: [Double]
            var kinds: [String]
        }
        let report = try JSONDecoder().decode(Report.self, from: Data(measured.output.utf8))
        let times = report.times.sorted()
        print(
            String(
                format: "lab agent: 20 kill -9 of redis, restarted and answering PING after p50 %.2f s, max %.2f s", times[10], times[19]))
        XCTAssertEqual(times.count, 20)
        XCTAssertLessThan(times[19], 2.0, "every restart within 2 s")
        XCTAssertEqual(report.kinds, Array(repeating: "restarted", count: 20), "one queued event per restart")

        // The agent itself killed: its loop starts it again.
        let killed = try await connection.run(
            .script(
                #"pid=$(cat /var/lib/flotilla-agent/pid); kill -9 "$pid"; sleep 3; new=$(cat /var/lib/flotilla-agent/pid); [ "$new" != "$pid" ] && kill -0 "$new""#
            ),
            timeout: .seconds(20))
        XCTAssertTrue(killed.succeeded, "the agent did not come back: \(killed.output) \(killed.errorOutput)")
    }
    /// A stand-in platform on the lab bridge: answers like the real one (the last sequence of
    /// an event batch is acknowledged) and writes every heartbeat and every event it receives,
    /// as received (duplicates included), one JSON line each.
    static let receiver = #"""
        import json, sys, time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        log = open(sys.argv[3], "a", buffering=1)
        class Platform(BaseHTTPRequestHandler):
            def log_message(self, *args): pass
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if "events" in body:
                    for event in body["events"]:
                        log.write(json.dumps({"type": "event", "at": time.time(), "sequence": event["sequence"],
                                              "epoch": event["epoch"], "kind": event["kind"]}) + "\n")
                    answer = {"acknowledged": body["events"][-1]["sequence"]}
                else:
                    log.write(json.dumps({"type": "heartbeat", "at": time.time()}) + "\n")
                    answer = {}
                data = json.dumps(answer).encode()
                self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
        ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Platform).serve_forever()
        """#

    struct Received: Decodable {
        var type: String
        var at: Double
        var sequence: Int?
        var epoch: String?
        var kind: String?
    }

    /// The platform stopped for 30 s while redis flaps: afterwards every event arrives, in
    /// order, none lost, none twice. Then the guest is reset: the boot hook starts the agent and
    /// it heartbeats within 5 s.
    func testEventsWaitOutAPlatformOutageInOrderOnceAndTheAgentSurvivesAReboot() async throws {
        let address = "10.77.1.21"
        let vm = try await lab.createGuest(name: "redis-02", role: "redis", address: address)
        let sshUp = await eventually(within: .seconds(10)) { await lab.canSSH(address) }
        XCTAssertTrue(sshUp, "guest never accepted SSH")
        let port = 18_291
        let received = FileManager.default.temporaryDirectory.appendingPathComponent("agent-receiver-\(UUID()).jsonl").path
        FileManager.default.createFile(atPath: received, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: received) }
        func startPlatform() throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", Self.receiver, "10.77.0.1", String(port), received]
            try process.run()
            return process
        }
        func log() throws -> [Received] {
            try String(contentsOfFile: received, encoding: .utf8).split(separator: "\n")
                .map { try JSONDecoder().decode(Received.self, from: Data($0.utf8)) }
        }
        var platform = try startPlatform()
        // SIGKILL: a child started from a dispatch thread inherits its blocked SIGTERM.
        defer { kill(platform.processIdentifier, SIGKILL) }

        let configuration = Self.configuration.replacingOccurrences(of: "http://10.77.0.1:9", with: "http://10.77.0.1:\(port)")
        let program = try String(contentsOfFile: Self.agentPath, encoding: .utf8)
        let connection = try await lab.connect(address)
        let installed = try await connection.run(
            .script(
                #"set -e; umask 022; printf '%s' "$1" > /usr/local/sbin/flotilla-agent; chmod 755 /usr/local/sbin/flotilla-agent; mkdir -p /etc/flotilla-agent; printf '%s' "$2" > /etc/flotilla-agent/config.json; /usr/local/sbin/flotilla-agent install"#,
                arguments: [program, configuration]), timeout: .seconds(30))
        XCTAssertTrue(installed.succeeded, installed.errorOutput)
        let heard = try await eventually(within: .seconds(15)) { try log().contains { $0.type == "heartbeat" } }
        XCTAssertTrue(heard, "no heartbeat from the agent")

        // The platform goes away for 30 s; redis is killed five times meanwhile.
        kill(platform.processIdentifier, SIGKILL)
        platform.waitUntilExit()
        let stopped = ContinuousClock.now
        let flaps = 5
        let flapped = try await connection.run(
            .script(
                #"""
                for i in $(seq "$1"); do
                  old=$(cat /run/redis/redis-server.pid); kill -9 "$old"
                  n=0; while [ "$(cat /run/redis/redis-server.pid 2>/dev/null)" = "$old" ] || ! kill -0 "$(cat /run/redis/redis-server.pid 2>/dev/null)" 2>/dev/null; do
                    n=$((n+1)); [ $n -gt 100 ] && exit 1; sleep 0.1; done
                  sleep 3
                done
                ls /var/lib/flotilla-agent/queue | wc -l
                """#, arguments: [String(flaps)]), timeout: .seconds(60))
        await connection.close()
        XCTAssertTrue(flapped.succeeded, "redis was not restarted while the platform was down: \(flapped.errorOutput)")
        XCTAssertEqual(flapped.output.trimmingCharacters(in: .whitespacesAndNewlines), String(flaps), "queued on the guest meanwhile")
        try await Task.sleep(until: stopped + .seconds(30))
        XCTAssertFalse(try log().contains { $0.type == "event" }, "nothing arrived while the platform was down")
        platform = try startPlatform()
        let delivered = try await eventually(within: .seconds(15)) { try log().filter { $0.type == "event" }.count >= flaps }
        XCTAssertTrue(delivered, "queued events did not arrive after the outage")
        try await Task.sleep(for: .seconds(2))  // anything sent twice would have come by now
        let events = try log().filter { $0.type == "event" }
        XCTAssertEqual(events.compactMap(\.sequence), Array(1...flaps), "in order, none lost, none twice")
        XCTAssertEqual(Set(events.compactMap(\.epoch)).count, 1)
        XCTAssertEqual(events.compactMap(\.kind), Array(repeating: "restarted", count: flaps))

        // The guest is reset (a reboot from vSphere): /etc/rc.local starts the agent again.
        try await vm.reset()
        let reset = Date().timeIntervalSince1970
        let back = try await eventually(within: .seconds(20)) { try log().contains { $0.type == "heartbeat" && $0.at > reset } }
        XCTAssertTrue(back, "no heartbeat after the reboot")
        let first = try XCTUnwrap(try log().first { $0.type == "heartbeat" && $0.at > reset })
        print(String(format: "lab agent: first heartbeat %.2f s after the guest was reset", first.at - reset))
        XCTAssertLessThan(first.at - reset, 5, "the agent heartbeats within 5 s of the reboot")
    }
}
