import Foundation
import Reachability
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A network namespace of the tests' own, routed from the machine: addresses in `answering`
/// answer; other addresses of 10.78.1.0/24 are routed into the namespace and dropped there
/// (it forwards nothing and has no route beyond its link), so they never answer. Nothing outside 10.78.0.0/16 and the names
/// `flrt-*` is touched, so the lab (`flt-*`, 10.77.0.0/16) can run beside it.
struct TestNetwork {
    static let namespace = "flrt-test"
    static let hostLink = "flrt-test"
    static let hostAddress = "10.78.0.1"
    static let namespaceAddress = "10.78.0.2"
    static let answering = ["10.78.1.1", "10.78.1.2", "10.78.1.3", "10.78.1.4"]

    /// Creates the namespace (removing a leftover of an interrupted run first).
    static func create() throws -> TestNetwork {
        remove()
        try ip("netns", "add", namespace)
        try ip("link", "add", hostLink, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        try ip("addr", "add", "\(hostAddress)/24", "dev", hostLink)
        try ip("link", "set", hostLink, "up")
        try ip("-n", namespace, "link", "set", "lo", "up")
        try ip("-n", namespace, "addr", "add", "\(namespaceAddress)/24", "dev", "eth0")
        try ip("-n", namespace, "link", "set", "eth0", "up")
        try ip("route", "add", "10.78.1.0/24", "via", namespaceAddress)
        let network = TestNetwork()
        // A new namespace inherits the machine's IPv4 forwarding switch; this one must not forward.
        try network.setKernelParameter("net/ipv4/ip_forward", "0")
        for address in answering {
            try network.addAddress(address)
        }
        return network
    }

    /// Removes the namespace; its veth pair and the route through it go with it.
    static func remove() {
        _ = try? run("/usr/sbin/ip", ["netns", "del", namespace])
        _ = try? run("/usr/sbin/ip", ["link", "del", hostLink])
    }

    func addAddress(_ address: String) throws {
        try Self.ip("-n", Self.namespace, "addr", "add", "\(address)/32", "dev", "eth0")
    }

    func removeAddress(_ address: String) throws {
        try Self.ip("-n", Self.namespace, "addr", "del", "\(address)/32", "dev", "eth0")
    }

    /// Sets a network parameter of the namespace (`/proc/sys/net/...` as seen from inside it).
    func setKernelParameter(_ path: String, _ value: String) throws {
        try Self.ip("netns", "exec", Self.namespace, "/bin/sh", "-c", "echo \"$1\" > \"/proc/sys/$2\"", "sh", value, path)
    }

    /// Makes a sweeper whose ICMP socket lives inside the namespace (a socket keeps the network
    /// namespace it was created in): a thread enters the namespace, opens it and leaves.
    func makeSweeperInside(settings: SweepSettings, preference: ProbePreference) throws -> ReachabilitySweeper {
        typealias SetNamespace = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else {
            throw XCTSkip("this C library has no setns")
        }
        let setNamespace = unsafeBitCast(symbol, to: SetNamespace.self)
        let cloneNewNet: Int32 = 0x4000_0000
        let result = ThreadResult()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            defer { done.signal() }
            let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
            let target = open("/run/netns/\(Self.namespace)", O_RDONLY | O_CLOEXEC)
            defer {
                close(original)
                close(target)
            }
            guard original >= 0, target >= 0, setNamespace(target, cloneNewNet) == 0 else {
                result.set(.failure(POSIXError(POSIXErrorCode(rawValue: errno) ?? .EINVAL)))
                return
            }
            result.set(Result { try ReachabilitySweeper(settings: settings, preference: preference) })
            _ = setNamespace(original, cloneNewNet)
        }
        done.wait()
        return try result.get()
    }

    static func ip(_ arguments: String...) throws {
        try ip(arguments)
    }

    static func ip(_ arguments: [String]) throws {
        let (status, errorOutput) = try run("/usr/sbin/ip", arguments)
        guard status == 0 else {
            throw POSIXError(.EIO, userInfo: [NSLocalizedDescriptionKey: "ip \(arguments.joined(separator: " ")): \(errorOutput)"])
        }
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let errorPipe = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errorPipe
        try process.run()
        let errorOutput = errorPipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: errorOutput, as: UTF8.self))
    }
}

/// Answers echo requests to the namespace's addresses after a delay, as a slow link would (this
/// machine's kernel has no netem): the namespace's own echo replies are switched off and a raw
/// socket inside it replies instead, from the address that was asked. Stop it with `stop()`.
///
/// The child inherits the signal mask of the dispatch thread that starts it, which blocks
/// SIGTERM: `terminate()` left it running and `waitUntilExit()` waited forever. So the script
/// unblocks its signals, exits when its stdin closes (the test process ended), and `stop()`
/// sends SIGKILL and waits a bounded time.
final class DelayedEchoResponder {
    private let process = Process()
    private let input = Pipe()

    /// Waits until the responder listens.
    init(network: TestNetwork, delay: Duration) throws {
        try network.setKernelParameter("net/ipv4/icmp_echo_ignore_all", "1")
        let script = """
            import os, signal, socket, sys, threading
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            def exit_with_parent():
                sys.stdin.buffer.read()
                os._exit(0)
            threading.Thread(target=exit_with_parent, daemon=True).start()
            delay = float(sys.argv[1])
            listener = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            senders = {}
            def checksum(data):
                total = sum(data[i] << 8 | data[i + 1] for i in range(0, len(data) - 1, 2))
                if len(data) % 2: total += data[-1] << 8
                while total > 0xFFFF: total = (total & 0xFFFF) + (total >> 16)
                return ~total & 0xFFFF
            def sender(address):
                if address not in senders:
                    senders[address] = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
                    senders[address].bind((address, 0))
                return senders[address]
            print("ready", flush=True)
            while True:
                packet, (source, _) = listener.recvfrom(65535)
                header = (packet[0] & 15) * 4
                if packet[header] != 8: continue
                asked = socket.inet_ntoa(packet[16:20])
                reply = bytearray(packet[header:])
                reply[0], reply[2:4] = 0, bytes(2)
                reply[2:4] = checksum(bytes(reply)).to_bytes(2, "big")
                threading.Timer(delay, sender(asked).sendto, (bytes(reply), (source, 0))).start()
            """
        let seconds = Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", TestNetwork.namespace, "python3", "-c", script, String(seconds)]
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        let ready = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        guard ready.hasPrefix("ready") else { throw POSIXError(.EIO, userInfo: [NSLocalizedDescriptionKey: "responder: \(ready)"]) }
    }

    /// Kills the responder (SIGKILL cannot be blocked) and waits at most 5 s for it to end.
    func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline {
            usleep(10_000)
        }
        XCTAssertFalse(process.isRunning, "the delayed echo responder did not end")
    }
}

/// Hands a value from the namespace thread back to the test.
private final class ThreadResult: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<ReachabilitySweeper, Error>?

    func set(_ value: Result<ReachabilitySweeper, Error>) {
        lock.withLock { self.value = value }
    }

    func get() throws -> ReachabilitySweeper {
        guard let value = lock.withLock({ value }) else { throw POSIXError(.EINVAL) }
        return try value.get()
    }
}

/// A TCP listener on loopback that never accepts: the kernel completes handshakes on its own.
final class LoopbackListener {
    let descriptor: Int32
    let port: UInt16

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && listen(descriptor, 1024) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard bound else {
            close(descriptor)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        self.descriptor = descriptor
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit {
        close(descriptor)
    }
}

/// Open descriptors of this process.
func openDescriptorCount() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}

/// Resident memory of this process in KiB.
func residentKiB() -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
}

func requireRoot() throws {
    try XCTSkipUnless(getuid() == 0, "needs root: raw ICMP sockets and network namespaces (scripts/test runs as root)")
}

func target(_ address: String, port: UInt16? = nil) throws -> ReachabilityTarget {
    try XCTUnwrap(ReachabilityTarget(address: address, port: port))
}

func status(_ sweeper: ReachabilitySweeper, _ address: String) async throws -> ReachabilityStatus {
    let status = await sweeper.status(of: address)
    return try XCTUnwrap(status, "no status for \(address)")
}

/// The next change, which a finished sweep has already published.
func nextChange(_ iterator: inout AsyncStream<ReachabilityChange>.Iterator) async throws -> ReachabilityChange {
    let change = await iterator.next()
    return try XCTUnwrap(change, "no change published")
}

extension Duration {
    var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
}
