import Foundation
import Lab
import RemoteShell
import VSphere
import XCTest

/// A running lab for one test: vcsim with templates, the supervisor following it, and a
/// vSphere client to clone and power VMs the way Flotilla would.
final class LabHarness: @unchecked Sendable {
    static let configuration = LabConfiguration(
        stateDirectory: "/var/lib/flotilla-lab-test",
        roles: ["web", "redis", "mysql"],
        pollInterval: .milliseconds(250))

    let supervisor: LabSupervisor
    let client: VSphereClient
    let vcsim: VcsimProcess
    private var following: Task<Void, Never>?
    private var clientClosed = false

    /// Starts from a clean machine (an earlier lab is taken down first). Fails, naming it,
    /// when a prerequisite is missing.
    static func start() async throws -> LabHarness {
        let missing = Lab.missingPrerequisites(configuration)
        guard missing.isEmpty else {
            XCTFail("lab prerequisites missing: \(missing.joined(separator: "; "))")
            throw LabError.missingPrerequisite(missing.joined(separator: "; "))
        }
        try await Lab.down(configuration)
        let supervisor = LabSupervisor(configuration: configuration)
        try await supervisor.start()
        do {
            guard let vcsim = await supervisor.vcsim else { throw LabError.vcsimDidNotStart("no vcsim after start") }
            let harness = try await LabHarness(supervisor: supervisor, vcsim: vcsim)
            harness.follow()
            return harness
        } catch {
            await supervisor.close()
            throw error
        }
    }

    private init(supervisor: LabSupervisor, vcsim: VcsimProcess) async throws {
        self.supervisor = supervisor
        self.vcsim = vcsim
        client = try await VSphereClient.connect(
            url: try XCTUnwrap(URL(string: vcsim.url)), username: vcsim.username, password: vcsim.password,
            trust: .pinnedSHA256(try XCTUnwrap(vcsim.thumbprint)))
    }

    func follow() {
        following = Task { [supervisor] in await supervisor.follow() }
    }

    /// Stops following (guests and vcsim keep running, as after a supervisor crash).
    func stopFollowing() async {
        following?.cancel()
        await following?.value
        following = nil
    }

    /// Stops following and closes both vSphere connections (before vcsim goes away).
    func disconnect() async {
        await stopFollowing()
        await supervisor.close()
        if !clientClosed {
            clientClosed = true
            try? await client.close()
        }
    }

    func tearDown() async throws {
        await disconnect()
        try await Lab.down(Self.configuration)
    }

    /// Clones `tpl-<role>` with cloud-init metadata for `address`, the password (if any), keys and
    /// sudo rule of `user`, then powers it on.
    func createGuest(
        name: String, role: String, address: String, prefixLength: Int = 16, password: String? = "Lab-pass-1", powerOn: Bool = true,
        user: String = "root", authorizedKeys: [String] = [], sudo: String? = nil
    ) async throws -> VirtualMachine {
        let configuration = GuestConfiguration(
            hostName: name, ipv4: .init(address: address, prefixLength: prefixLength, gateway: "10.77.0.1", dns: ["10.77.0.1"]),
            passwordHash: password.map { CryptSHA512.hash(password: $0) }, user: user, authorizedKeys: authorizedKeys, sudo: sudo)
        let template = try await client.findTemplate(named: "tpl-\(role)")
        let vm = try await client.clone(
            template,
            CloneRequest(
                name: name,
                extraConfig: try configuration.extraConfig() + [ExtraConfigEntry(key: VSphereLabInventory.roleKey, value: role)]))
        if powerOn {
            try await vm.powerOn()
        }
        return vm
    }

    func connect(_ address: String, password: String = "Lab-pass-1") async throws -> SSHConnection {
        try await connect(address, user: "root", authentication: .password(password))
    }

    func connect(_ address: String, user: String, authentication: SSHAuthentication) async throws -> SSHConnection {
        try await SSHConnection.connect(
            to: SSHTarget(host: address, user: user, authentication: authentication),
            hostKeyStore: InMemoryHostKeyStore(),
            options: SSHConnectionOptions(connectTimeout: .seconds(2), handshakeTimeout: .seconds(5)))
    }

    /// Runs a command over a fresh connection and returns its standard output.
    func ssh(_ address: String, _ command: RemoteShell.Command) async throws -> RemoteShell.CommandResult {
        let connection = try await connect(address)
        defer { Task { await connection.close() } }
        return try await connection.run(command, timeout: .seconds(10))
    }

    func canSSH(_ address: String) async -> Bool {
        guard let connection = try? await connect(address) else { return false }
        let result = try? await connection.run(RemoteShell.Command("true"), timeout: .seconds(5))
        await connection.close()
        return result?.succeeded == true
    }

    /// What the guest's sshd logged (`/var/log/sshd.log` inside it, read from its upper layer).
    func sshdLog(_ vm: VirtualMachine) -> String {
        let path = Self.configuration.guestsDirectory + "/" + vm.reference.value + "/upper/var/log/sshd.log"
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    /// Waits for the guest's network namespace (named after the VM's managed object id).
    func namespaceExists(_ vm: VirtualMachine) async throws -> Bool {
        try await runLocal("/usr/sbin/ip", "netns", "list").output
            .split(separator: "\n").contains { $0.split(separator: " ").first == "flt-\(vm.reference.value)" }
    }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
func eventually(within timeout: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// One ICMP echo from the machine's root namespace (raw socket: root).
func ping(_ address: String) async -> Bool {
    (try? await runLocal("/usr/bin/ping", "-c1", "-W1", "-n", address).status) == 0
}

struct LocalResult {
    var status: Int32
    var output: String
}

/// Runs a local program and waits for it, off the cooperative pool.
func runLocal(_ executable: String, _ arguments: String...) async throws -> LocalResult {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            do {
                try process.run()
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(
                    returning: LocalResult(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self)))
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}

/// Sends `request` to a TCP port; status 0 when it connected, output the first bytes of the answer.
func tcpExchange(_ address: String, port: Int, _ request: String) async throws -> LocalResult {
    try await runLocal(
        "/usr/bin/python3", "-c",
        """
        import socket, sys
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
        s.sendall(sys.argv[3].encode())
        try:
            sys.stdout.write(s.recv(100).decode(errors="replace"))
        except ConnectionResetError:
            pass
        """, address, String(port), request)
}
