#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// TCP connects as a reachability probe: a host that completes the handshake or refuses it
/// (a reset) has answered; silence or an unreachable error until the timeout is a miss.
enum TCPConnectProbe {
    /// Connects to every endpoint, at most `maxInFlight` at once, each given `timeout`, and
    /// returns each round-trip time in nanoseconds (the handshake or the reset), or `noAnswer`.
    /// Every socket is closed before it returns.
    static func run(_ endpoints: [(address: UInt32, port: UInt16)], timeout: Duration, maxInFlight: Int) -> [UInt64] {
        var roundTrips = [UInt64](repeating: noAnswer, count: endpoints.count)
        var pending: [(descriptor: Int32, index: Int, started: UInt64)] = []
        var waiting: [pollfd] = []
        let timeout = timeout.nanoseconds
        var next = 0
        while next < endpoints.count || !pending.isEmpty {
            starting: while pending.count < maxInFlight && next < endpoints.count {
                let started = monotonicNanoseconds()
                switch beginConnect(to: endpoints[next]) {
                case .inProgress(let descriptor):
                    pending.append((descriptor, next, started))
                case .answered(let descriptor):
                    roundTrips[next] = monotonicNanoseconds() - started
                    closeAbortively(descriptor)
                case .silent:
                    break
                case .outOfDescriptors:
                    // Wait for the connects in flight to free descriptors; with none in flight, give up on the rest.
                    if pending.isEmpty { return roundTrips }
                    break starting
                }
                next += 1
            }
            guard !pending.isEmpty else { continue }
            let now = monotonicNanoseconds()
            let firstDeadline = pending.map { $0.started + timeout }.min() ?? now
            waiting = pending.map { pollfd(fd: $0.descriptor, events: Int16(POLLOUT), revents: 0) }
            let milliseconds = firstDeadline > now ? Int32(min((firstDeadline - now + 999_999) / 1_000_000, 60_000)) : 0
            _ = poll(&waiting, nfds_t(waiting.count), milliseconds)
            let finished = monotonicNanoseconds()
            for position in pending.indices.reversed() {
                let entry = pending[position]
                if waiting[position].revents != 0 {
                    if answered(entry.descriptor) {
                        roundTrips[entry.index] = finished - entry.started
                    }
                } else if finished < entry.started + timeout {
                    continue
                }
                closeAbortively(entry.descriptor)
                pending.swapAt(position, pending.count - 1)
                waiting.swapAt(position, waiting.count - 1)
                pending.removeLast()
                waiting.removeLast()
            }
        }
        return roundTrips
    }

    private enum Outcome {
        case inProgress(Int32)
        case answered(Int32)
        case silent
        case outOfDescriptors
    }

    private static func beginConnect(to endpoint: (address: UInt32, port: UInt16)) -> Outcome {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return errno == EMFILE || errno == ENFILE ? .outOfDescriptors : .silent }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = endpoint.port.bigEndian
        address.sin_addr.s_addr = endpoint.address.bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result == 0 || errno == ECONNREFUSED { return .answered(descriptor) }
        if errno == EINPROGRESS { return .inProgress(descriptor) }
        closeAbortively(descriptor)
        return .silent
    }

    /// True when the connect finished with a handshake or a refusal.
    private static func answered(_ descriptor: Int32) -> Bool {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return false }
        return error == 0 || error == ECONNREFUSED
    }

    /// Closes with a reset instead of a FIN: no TIME_WAIT entry per probe, so thousands of
    /// probes a second do not use up the machine's ephemeral ports.
    private static func closeAbortively(_ descriptor: Int32) {
        var abort = linger(l_onoff: 1, l_linger: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_LINGER, &abort, socklen_t(MemoryLayout<linger>.size))
        close(descriptor)
    }
}
