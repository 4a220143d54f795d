import Foundation
import XCTest

/// A private OpenSSH server for tests, on 127.0.0.1 and a free port.
///
/// It runs as root inside its own mount namespace (`unshare -m`): a tmpfs on /run provides the
/// privilege-separation directory, and bind-mounted copies of /etc/passwd, /etc/shadow and
/// /etc/group add the test user, so the machine's real /etc is never modified.
/// Requires Debian's `openssh-server` package; without it `init` throws (tests fail, not skip).
final class TestSSHServer {
    static let user = "flotilla-test"
    static let userID = 48213
    static let password = "correct horse battery staple"
    /// `openssl passwd -6 -salt RemoteShellTest` of `password`, precomputed so the tests need no openssl binary.
    private static let passwordHash =
        "$6$RemoteShellTest$OyitijzQi8HMCaoicCXv8NzZ2pbsR3SI.WFo1dJt5qmfmO8HO5VbFVrIwNK88GOUImT/qmEXcwUNAt70M4mDk/"

    let directory: URL
    let port: Int
    let maxSessions: Int
    /// An ed25519 key authorized for the test user.
    let clientKeyPath: String
    /// An ECDSA (nistp256) key authorized for the test user.
    let clientECDSAKeyPath: String
    var homeDirectory: String { directory.appendingPathComponent("home").path }
    private(set) var hostKeyPath: String
    private var pid: pid_t?
    private var hostKeyGeneration = 0

    init(maxSessions: Int = 10) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd") else {
            throw TestEnvironmentError(
                "/usr/sbin/sshd not found: install the Debian package openssh-server (listed in scripts/apt-packages.txt)")
        }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("remoteshell-sshd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try freeLoopbackPort()
        self.maxSessions = maxSessions
        hostKeyPath = ""
        clientKeyPath = directory.appendingPathComponent("client_ed25519").path
        clientECDSAKeyPath = directory.appendingPathComponent("client_ecdsa").path
        try runTool("/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "client", "-f", clientKeyPath)
        try runTool("/usr/bin/ssh-keygen", "-q", "-t", "ecdsa", "-b", "256", "-N", "", "-C", "client", "-f", clientECDSAKeyPath)
        try prepareUserAndConfig()
        try rotateHostKey()
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The fingerprint of the current host key as `ssh-keygen -l` prints it (`SHA256:...`).
    func hostKeyFingerprint() throws -> String {
        let line = try runTool("/usr/bin/ssh-keygen", "-l", "-f", hostKeyPath + ".pub")
        return String(line.split(separator: " ")[1])
    }

    /// Restarts sshd on the same port with a newly generated host key.
    func restartWithNewHostKey() throws {
        stop()
        try rotateHostKey()
        try start()
    }

    func start() throws {
        let log = directory.appendingPathComponent("sshd.log").path
        let d = directory.path
        let script = """
            set -e
            mount -t tmpfs tmpfs /run
            mkdir -m 755 /run/sshd
            mount --bind '\(d)/passwd' /etc/passwd
            mount --bind '\(d)/shadow' /etc/shadow
            mount --bind '\(d)/group' /etc/group
            exec /usr/sbin/sshd -D -e -f '\(d)/sshd_config'
            """
        // posix_spawn rather than Foundation's Process: with a long-running Process child,
        // swift-corelibs-foundation can block in wait4 on it and never notice other children exit.
        let pid = try spawnDaemon(["/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script], logPath: log)
        self.pid = pid
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                self.pid = nil
                throw TestEnvironmentError(
                    "sshd exited (wait status \(status)): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
            if canConnect(port: port) { return }
            usleep(20_000)
        }
        throw TestEnvironmentError("sshd did not listen on port \(port) within 10 s")
    }

    func stop() {
        guard let pid else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        self.pid = nil
    }

    private func rotateHostKey() throws {
        hostKeyGeneration += 1
        hostKeyPath = directory.appendingPathComponent("host_ed25519_\(hostKeyGeneration)").path
        try runTool("/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "host", "-f", hostKeyPath)
        let config = """
            ListenAddress 127.0.0.1:\(port)
            HostKey \(hostKeyPath)
            PidFile none
            UsePAM no
            PasswordAuthentication yes
            KbdInteractiveAuthentication no
            PubkeyAuthentication yes
            AuthorizedKeysFile \(directory.path)/authorized_keys
            StrictModes no
            PermitRootLogin no
            AllowUsers \(Self.user)
            MaxStartups 100:30:200
            MaxSessions \(maxSessions)
            LoginGraceTime 60
            PrintMotd no
            LogLevel VERBOSE
            """
        try config.write(to: directory.appendingPathComponent("sshd_config"), atomically: true, encoding: .utf8)
    }

    private func prepareUserAndConfig() throws {
        let home = homeDirectory
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try runTool("/bin/chown", "\(Self.userID):\(Self.userID)", home)
        let id = Self.userID
        try appendLine(to: "/etc/passwd", copy: "passwd", line: "\(Self.user):x:\(id):\(id):RemoteShell test:\(home):/bin/sh")
        try appendLine(to: "/etc/shadow", copy: "shadow", line: "\(Self.user):\(Self.passwordHash):19000:0:99999:7:::")
        try appendLine(to: "/etc/group", copy: "group", line: "\(Self.user):x:\(id):")
        let authorized = try [clientKeyPath, clientECDSAKeyPath].map { try String(contentsOfFile: $0 + ".pub", encoding: .utf8) }.joined()
        try authorized.write(to: directory.appendingPathComponent("authorized_keys"), atomically: true, encoding: .utf8)
    }

    private func appendLine(to original: String, copy name: String, line: String) throws {
        var contents = try String(contentsOfFile: original, encoding: .utf8)
        if !contents.hasSuffix("\n") { contents += "\n" }
        let path = directory.appendingPathComponent(name).path
        try (contents + line + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, name == "shadow" ? 0o640 : 0o644)
    }
}

struct TestEnvironmentError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Starts a process with standard input from /dev/null and output appended to `logPath`.
private func spawnDaemon(_ arguments: [String], logPath: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    let result = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
    guard result == 0 else { throw TestEnvironmentError("cannot start \(arguments[0]): error \(result)") }
    return pid
}

/// Runs a tool to completion and returns its standard output; throws on a non-zero exit.
@discardableResult
func runTool(_ executable: String, _ arguments: String...) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard process.terminationStatus == 0 else {
        throw TestEnvironmentError("\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(text)")
    }
    return text
}

/// A TCP port on 127.0.0.1 that nothing listens on at the moment of the call.
func freeLoopbackPort() throws -> Int {
    let listener = try LoopbackListener(backlog: 1)
    return listener.port
}

func canConnect(port: Int) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var address = loopbackAddress(port: port)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

private func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
    return address
}

/// A listening socket on 127.0.0.1 that never accepts: connections complete in the kernel
/// (a server that never speaks SSH) until the accept queue is full, after which new SYNs are
/// dropped (an unreachable host, without leaving loopback).
final class LoopbackListener {
    let port: Int
    private let descriptor: Int32
    private var fillers: [Int32] = []

    init(backlog: Int32) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestEnvironmentError("socket failed: errno \(errno)") }
        var address = loopbackAddress(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(descriptor, backlog) == 0 else {
            close(descriptor)
            throw TestEnvironmentError("bind/listen failed: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(descriptor, $0, &length) }
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// Fills the accept queue so that the kernel drops further SYNs to this port.
    func fillAcceptQueue() {
        for _ in 0..<4 {
            let filler = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            var address = loopbackAddress(port: port)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(filler, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            fillers.append(filler)
        }
        usleep(100_000)
    }

    deinit {
        fillers.forEach { close($0) }
        close(descriptor)
    }
}
