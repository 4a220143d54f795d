#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one ICMP socket a sweeper sends every echo request through and reads every reply from:
/// the number of sockets does not grow with the number of addresses.
final class ICMPEchoSocket: Sendable {
    let method: ProbeMethod
    let descriptor: Int32
    /// Identifier in our requests. A raw socket receives every echo reply that reaches the machine,
    /// so replies are matched on it; a datagram socket's kernel sets its own and routes only our replies here.
    let identifier: UInt16
    /// Random bytes in every request's payload, checked in the reply: replies to other programs'
    /// pings and stray or forged packets are ignored.
    let token: UInt64

    private init(method: ProbeMethod, descriptor: Int32) {
        self.method = method
        self.descriptor = descriptor
        self.identifier = UInt16.random(in: 1...UInt16.max)
        self.token = UInt64.random(in: 1...UInt64.max)
    }

    deinit {
        close(descriptor)
    }

    /// Opens a non-blocking ICMP socket: raw (root or CAP_NET_RAW), or the unprivileged datagram
    /// kind (allowed for the groups in `net.ipv4.ping_group_range`).
    static func open(raw: Bool) throws -> ICMPEchoSocket {
        let method: ProbeMethod = raw ? .icmpRaw : .icmpDatagram
        let type = Int32(raw ? SOCK_RAW.rawValue : SOCK_DGRAM.rawValue)
        let descriptor = socket(AF_INET, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(IPPROTO_ICMP))
        guard descriptor >= 0 else { throw ReachabilityError.socketUnavailable(method: method, errno: errno) }
        if method == .icmpRaw {
            // Only echo replies wake the sweep: the kernel drops every other ICMP type (requests
            // to local addresses included) before it reaches this socket.
            var filter: UInt32 = ~(1 << echoReplyType)
            setsockopt(descriptor, socketLevelRaw, icmpFilterOption, &filter, socklen_t(MemoryLayout<UInt32>.size))
        }
        return ICMPEchoSocket(method: method, descriptor: descriptor)
    }

    /// Sends one echo request to each address (again to the silent ones when `attempts` > 1; each
    /// address's wait is split among the attempts) and returns each round-trip time in nanoseconds,
    /// or `noAnswer`, with the addresses that answered `previous` round's requests only now.
    /// Blocks until every address has answered or waited its own `timeouts` entry (nanoseconds)
    /// after its request, plus the time the pacing takes to send them.
    func echo(
        to addresses: [UInt32], round: UInt32, timeouts: [UInt64], attempts: Int, packetsPerSecond: Int, previous: EchoRound?
    ) -> (roundTrips: [UInt64], lateAnswers: [UInt32]) {
        guard !addresses.isEmpty else { return ([], []) }
        setReceiveBuffer(forReplies: addresses.count)
        var exchange = EchoExchange(socket: self, addresses: addresses, round: round, timeouts: timeouts, previous: previous)
        exchange.run(attempts: attempts, packetsPerSecond: packetsPerSecond)
        return (exchange.roundTrips, exchange.lateAnswers)
    }

    /// Room for every reply of a sweep, should the sweep thread be descheduled while they arrive
    /// (a lost reply is a false miss). The kernel charges a queued reply its buffer's true size,
    /// several KiB on loopback, not its 60 bytes; memory is only taken while replies wait.
    private func setReceiveBuffer(forReplies count: Int) {
        var bytes = Int32(min(max(count * 4096, 1024 * 1024), 64 * 1024 * 1024))
        let size = socklen_t(MemoryLayout<Int32>.size)
        // SO_RCVBUFFORCE passes net.core.rmem_max as root; otherwise the capped SO_RCVBUF has to do.
        if setsockopt(descriptor, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, size) != 0 {
            setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &bytes, size)
        }
    }

    static let echoRequestType: UInt8 = 8
    static let echoReplyType: UInt8 = 0
    private static let socketLevelRaw: Int32 = 255  // SOL_RAW
    private static let icmpFilterOption: Int32 = 1  // ICMP_FILTER
}

/// A round-trip time that never came.
let noAnswer = UInt64.max

/// Nanoseconds on the monotonic clock: request payloads carry it, and deadlines use it.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

extension Duration {
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(seconds, 0)) * 1_000_000_000 + UInt64(max(attoseconds, 0) / 1_000_000_000)
    }

    init(nanoseconds: UInt64) {
        self = .nanoseconds(Int64(clamping: nanoseconds))
    }
}

/// A sweep's round number and the addresses it probed, in order: what a late reply is checked against.
struct EchoRound: Sendable {
    let round: UInt32
    let addresses: [UInt32]
}

/// One sweep's echo requests and replies on an `ICMPEchoSocket`.
///
/// Request layout: ICMP header (type, code, checksum, identifier, sequence = index mod 2^16), then
/// the payload: token (8 bytes), round (4), the address's index in the sweep (4), send time (8).
/// A reply counts when its token, round and index match and it came from that index's address;
/// one with the previous round's number that matches that round's address is a late answer.
private struct EchoExchange {
    let socket: ICMPEchoSocket
    let addresses: [UInt32]
    let round: UInt32
    let start: UInt64
    /// Each address's wait in nanoseconds, for all attempts together.
    let timeouts: [UInt64]
    let previous: EchoRound?
    private(set) var roundTrips: [UInt64]
    private(set) var lateAnswers: [UInt32] = []
    /// When each address's latest request went out; 0 when none could be sent.
    private var sentAt: [UInt64]
    private var silent: Int
    /// Set when an answer arrived: the wait's end is worked out again over the still silent.
    private var answeredSinceDeadline = false
    private var request = [UInt8](repeating: 0, count: EchoExchange.requestSize)
    private var reply = [UInt8](repeating: 0, count: 2048)

    static let payloadSize = 24
    static let requestSize = 8 + payloadSize

    init(socket: ICMPEchoSocket, addresses: [UInt32], round: UInt32, timeouts: [UInt64], previous: EchoRound?) {
        self.socket = socket
        self.addresses = addresses
        self.round = round
        self.timeouts = timeouts
        self.previous = previous
        start = monotonicNanoseconds()
        roundTrips = [UInt64](repeating: noAnswer, count: addresses.count)
        sentAt = [UInt64](repeating: 0, count: addresses.count)
        silent = addresses.count
    }

    mutating func run(attempts: Int, packetsPerSecond: Int) {
        let attempts = UInt64(max(attempts, 1))
        // Replies to the previous sweep that came after its wait are queued already.
        drain()
        for _ in 0..<attempts where silent > 0 {
            sendToSilent(packetsPerSecond: packetsPerSecond)
            waitForSilent(share: attempts)
        }
    }

    /// Reads replies until every silent address has waited its timeout / `share` since its request.
    private mutating func waitForSilent(share: UInt64) {
        var deadline = silentWaitEnd(share: share)
        while silent > 0 {
            if answeredSinceDeadline {
                answeredSinceDeadline = false
                deadline = silentWaitEnd(share: share)
            }
            let now = monotonicNanoseconds()
            if now >= deadline { return }
            var waiting = pollfd(fd: socket.descriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&waiting, 1, Int32(min((deadline - now + 999_999) / 1_000_000, 60_000)))
            drain()
        }
    }

    /// When the last still silent address's wait ends (0 when none waits).
    private func silentWaitEnd(share: UInt64) -> UInt64 {
        var latest: UInt64 = 0
        for index in addresses.indices where roundTrips[index] == noAnswer && sentAt[index] != 0 {
            latest = max(latest, sentAt[index] + timeouts[index] / share)
        }
        return latest
    }

    /// Sends a request to every address without an answer yet, at most `packetsPerSecond`
    /// (in bursts of a millisecond's worth), reading replies between bursts.
    private mutating func sendToSilent(packetsPerSecond: Int) {
        let burst = UInt64(max(packetsPerSecond / 1000, 1))
        let sendStart = monotonicNanoseconds()
        var sent: UInt64 = 0
        for index in addresses.indices where roundTrips[index] == noAnswer {
            while true {
                let now = monotonicNanoseconds()
                if sent < burst + (now - sendStart) * UInt64(packetsPerSecond) / 1_000_000_000 { break }
                receive(until: now + 1_000_000)
            }
            send(to: index)
            sent += 1
        }
    }

    private mutating func send(to index: Int) {
        fillRequest(index: index)
        var destination = sockaddr_in()
        destination.sin_family = sa_family_t(AF_INET)
        destination.sin_addr.s_addr = addresses[index].bigEndian
        let firstTry = monotonicNanoseconds()
        while true {
            let result = withUnsafePointer(to: &destination) { address in
                address.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(socket.descriptor, request, request.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if result >= 0 {
                sentAt[index] = monotonicNanoseconds()
                return
            }
            switch errno {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK, ENOBUFS:
                // The send queue is full: give it a millisecond (reading replies meanwhile), then retry,
                // for at most the timeout.
                let now = monotonicNanoseconds()
                if now - firstTry >= timeouts[index] { return }
                receive(until: now + 1_000_000)
            default:
                // No route, unreachable neighbour, a firewall's EPERM: this address is silent this time.
                return
            }
        }
    }

    private mutating func fillRequest(index: Int) {
        let sendTime = monotonicNanoseconds()
        request.withUnsafeMutableBytes { bytes in
            bytes[0] = ICMPEchoSocket.echoRequestType
            bytes[1] = 0
            bytes.storeBytes(of: 0, toByteOffset: 2, as: UInt16.self)
            bytes.storeBytes(of: socket.identifier.bigEndian, toByteOffset: 4, as: UInt16.self)
            bytes.storeBytes(of: UInt16(truncatingIfNeeded: index).bigEndian, toByteOffset: 6, as: UInt16.self)
            bytes.storeBytes(of: socket.token, toByteOffset: 8, as: UInt64.self)
            bytes.storeBytes(of: round, toByteOffset: 16, as: UInt32.self)
            bytes.storeBytes(of: UInt32(truncatingIfNeeded: index), toByteOffset: 20, as: UInt32.self)
            bytes.storeBytes(of: sendTime, toByteOffset: 24, as: UInt64.self)
            bytes.storeBytes(of: internetChecksum(UnsafeRawBufferPointer(bytes)).bigEndian, toByteOffset: 2, as: UInt16.self)
        }
    }

    /// Reads replies until `time` (monotonic) or until every address has answered.
    private mutating func receive(until time: UInt64) {
        while silent > 0 {
            drain()
            let now = monotonicNanoseconds()
            if now >= time || silent == 0 { return }
            var waiting = pollfd(fd: socket.descriptor, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(min((time - now + 999_999) / 1_000_000, 60_000))
            _ = poll(&waiting, 1, milliseconds)
        }
    }

    /// Reads every reply already queued.
    private mutating func drain() {
        var source = sockaddr_in()
        while true {
            var sourceLength = socklen_t(MemoryLayout<sockaddr_in>.size)
            let count = reply.withUnsafeMutableBytes { buffer in
                withUnsafeMutablePointer(to: &source) { address in
                    address.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(socket.descriptor, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT), $0, &sourceLength)
                    }
                }
            }
            if count < 0 {
                if errno == EINTR { continue }
                return
            }
            let receivedAt = monotonicNanoseconds()
            let from = UInt32(bigEndian: source.sin_addr.s_addr)
            reply.withUnsafeBytes { match(UnsafeRawBufferPointer(rebasing: $0[..<count]), from: from, at: receivedAt) }
        }
    }

    private mutating func match(_ packet: UnsafeRawBufferPointer, from source: UInt32, at receivedAt: UInt64) {
        var offset = 0
        if socket.method == .icmpRaw {
            // A raw socket's packets start with the IPv4 header.
            guard packet.count >= 20, packet[0] >> 4 == 4 else { return }
            offset = Int(packet[0] & 0x0f) * 4
        }
        guard packet.count >= offset + Self.requestSize,
            packet[offset] == ICMPEchoSocket.echoReplyType, packet[offset + 1] == 0
        else { return }
        let identifier = UInt16(bigEndian: packet.loadUnaligned(fromByteOffset: offset + 4, as: UInt16.self))
        let sequence = UInt16(bigEndian: packet.loadUnaligned(fromByteOffset: offset + 6, as: UInt16.self))
        let token = packet.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
        let round = packet.loadUnaligned(fromByteOffset: offset + 16, as: UInt32.self)
        let index = Int(packet.loadUnaligned(fromByteOffset: offset + 20, as: UInt32.self))
        let requestSentAt = packet.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self)
        guard socket.method != .icmpRaw || identifier == socket.identifier, token == socket.token,
            sequence == UInt16(truncatingIfNeeded: index), requestSentAt <= receivedAt
        else { return }
        if round == self.round {
            guard index < addresses.count, addresses[index] == source, roundTrips[index] == noAnswer, requestSentAt >= start else { return }
            roundTrips[index] = receivedAt - requestSentAt
            silent -= 1
            answeredSinceDeadline = true
        } else if let previous, round == previous.round, index < previous.addresses.count, previous.addresses[index] == source {
            lateAnswers.append(source)
        }
    }
}

/// The Internet checksum (RFC 1071) of `bytes`, in host byte order.
func internetChecksum(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
    var sum: UInt32 = 0
    var index = 0
    while index + 1 < bytes.count {
        sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
        index += 2
    }
    if index < bytes.count {
        sum += UInt32(bytes[index]) << 8
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16)
    }
    return ~UInt16(sum)
}
