import Dispatch
import Foundation

/// Watches many IPv4 addresses from one process: every sweep sends one ICMP echo request to
/// each target over a single socket, matches the replies by identifier, sequence, payload and
/// source, and turns answers and misses into up / down / unknown with a change stream.
///
/// Built on POSIX sockets and `poll` rather than SwiftNIO: NIO has no raw-IP channel, and a
/// sweep is one socket, one burst of sends and one wait, which a plain loop does with the fewest
/// wake-ups. The loop blocks a thread of its own (a serial dispatch queue) for at most the
/// timeout, so Swift's concurrency pool and the event loops are never held up. Sockets: one ICMP
/// socket for the sweeper's life, plus at most `maxConnectsInFlight` TCP sockets during a
/// sweep's TCP probes, all closed before the sweep ends.
public actor ReachabilitySweeper {
    /// How this sweeper probes, chosen when it was made.
    public nonisolated let method: ProbeMethod
    private let echoSocket: ICMPEchoSocket?
    private let probeQueue = DispatchQueue(label: "flotilla.reachability.sweep")
    private var settings: SweepSettings
    private var statuses: [ReachabilityStatus] = []
    private var positions: [UInt32: Int] = [:]
    private var round: UInt64 = 0
    /// Round trips over every target's answers: the wait for targets without answers of their own.
    private var groupEstimate: RoundTripEstimate?
    /// The latest sweep's round and addresses, to recognise its late answers.
    private var previousRound: EchoRound?
    private var subscribers: [Int: AsyncStream<ReachabilityChange>.Continuation] = [:]
    private var nextSubscriber = 0
    /// The latest finished sweep, nil before the first.
    public private(set) var lastSweep: SweepSummary?

    /// Opens the probe socket. `.automatic` tries an unprivileged ICMP datagram socket first (the
    /// kernel then delivers only this socket's replies), then a raw one, then settles for TCP.
    public init(settings: SweepSettings = SweepSettings(), preference: ProbePreference = .automatic) throws {
        try settings.validate()
        self.settings = settings
        switch preference {
        case .only(.tcp):
            echoSocket = nil
        case .only(let method):
            echoSocket = try ICMPEchoSocket.open(raw: method == .icmpRaw)
        case .automatic:
            echoSocket = (try? ICMPEchoSocket.open(raw: false)) ?? (try? ICMPEchoSocket.open(raw: true))
        }
        method = echoSocket?.method ?? .tcp
    }

    deinit {
        for subscriber in subscribers.values {
            subscriber.finish()
        }
    }

    /// Replaces the watched targets. Targets that stay keep their state; a repeated address
    /// counts once (its last port wins).
    public func setTargets(_ targets: [ReachabilityTarget]) {
        var kept: [ReachabilityStatus] = []
        var keptPositions: [UInt32: Int] = [:]
        kept.reserveCapacity(targets.count)
        for target in targets {
            if let position = keptPositions[target.addressValue] {
                kept[position].target = target
                continue
            }
            keptPositions[target.addressValue] = kept.count
            if let position = positions[target.addressValue] {
                var status = statuses[position]
                status.target = target
                kept.append(status)
            } else {
                kept.append(ReachabilityStatus(target: target, state: .unknown, consecutiveMisses: 0))
            }
        }
        statuses = kept
        positions = keptPositions
    }

    /// Changes timeout, retries, threshold or interval; the next sweep uses them.
    public func update(_ settings: SweepSettings) throws {
        try settings.validate()
        self.settings = settings
    }

    public func currentSettings() -> SweepSettings { settings }

    /// Every target's latest status, in the order the targets were given.
    public func allStatuses() -> [ReachabilityStatus] { statuses }

    public func status(of address: String) -> ReachabilityStatus? {
        ReachabilityTarget(address: address).flatMap { positions[$0.addressValue] }.map { statuses[$0] }
    }

    /// State changes from now on. Each subscriber keeps at most `bufferingNewest` undelivered
    /// changes (older ones are dropped; a slow page reloads the statuses), so memory stays bounded.
    public func changes(bufferingNewest limit: Int = 10_000) -> AsyncStream<ReachabilityChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: ReachabilityChange.self, bufferingPolicy: .bufferingNewest(limit))
        let id = nextSubscriber
        nextSubscriber += 1
        subscribers[id] = continuation
        continuation.onTermination = { [weak self] _ in
            Task { await self?.unsubscribe(id) }
        }
        return stream
    }

    private func unsubscribe(_ id: Int) {
        subscribers[id] = nil
    }

    /// Sweeps every `interval` until the calling task is cancelled. A sweep that overruns the
    /// interval delays the next one to the following tick instead of piling sweeps up.
    public func run() async {
        let clock = ContinuousClock()
        var next = clock.now
        while !Task.isCancelled {
            await sweep()
            let interval = settings.interval
            next += interval
            let now = clock.now
            if next < now {
                next += interval * Int((now - next) / interval) + interval
            }
            do {
                try await Task.sleep(until: next, clock: clock)
            } catch {
                return
            }
        }
    }

    /// Probes every target once, updates their states and publishes the changes.
    @discardableResult
    public func sweep() async -> SweepSummary {
        round += 1
        let timeouts = statuses.map(probeTimeout)
        let plan = ProbePlan(
            round: round, addresses: statuses.map(\.target.addressValue), ports: statuses.map(\.target.port), timeouts: timeouts,
            previous: previousRound, settings: settings)
        let started = ContinuousClock.now
        let answers = await withCheckedContinuation { continuation in
            probeQueue.async { [echoSocket] in
                continuation.resume(returning: plan.run(echoSocket: echoSocket))
            }
        }
        previousRound = EchoRound(round: UInt32(truncatingIfNeeded: plan.round), addresses: plan.addresses)
        let heardLate = backOff(answeredLate: answers.lateAnswers)
        let changes = apply(answers, of: plan, heardLate: heardLate)
        let summary = SweepSummary(
            round: plan.round, method: method, duration: ContinuousClock.now - started, probed: plan.addresses.count,
            answered: answers.roundTrips.lazy.filter { $0 != noAnswer }.count, changes: changes,
            longestTimeout: Duration(nanoseconds: timeouts.max() ?? 0), lateAnswers: heardLate.count)
        lastSweep = summary
        return summary
    }

    /// How long this sweep waits for `status`'s answer, in nanoseconds: its own estimate, else
    /// the estimate over all targets, else the ceiling; kept between floor and ceiling, then
    /// doubled per backoff up to the ceiling.
    private func probeTimeout(_ status: ReachabilityStatus) -> UInt64 {
        let floor = settings.minimumTimeout.nanoseconds
        let ceiling = settings.timeout.nanoseconds
        let estimated = (status.estimate ?? groupEstimate)?.timeout ?? ceiling
        var wait = min(max(estimated, floor), ceiling)
        for _ in 0..<status.backoff where wait < ceiling { wait *= 2 }
        return min(wait, ceiling)
    }

    /// Lengthens the wait of targets that missed the previous sweep but answered after its wait
    /// ended; returns their positions.
    private func backOff(answeredLate addresses: [UInt32]) -> Set<Int> {
        var heard: Set<Int> = []
        for address in Set(addresses) {
            guard let position = positions[address], statuses[position].roundTripTime == nil else { continue }
            statuses[position].backoff = min(statuses[position].backoff + 1, Self.maximumBackoff)
            heard.insert(position)
        }
        return heard
    }

    /// Doublings beyond this change nothing: 2^16 × 1 ms floor exceeds any allowed ceiling.
    private static let maximumBackoff = 16

    /// Folds one sweep's answers into the statuses (targets removed meanwhile are skipped) and
    /// returns how many changed state. A target in `heardLate` answered during this sweep, if
    /// only to the previous one: a miss now does not bring it closer to down.
    private func apply(_ answers: ProbeAnswers, of plan: ProbePlan, heardLate: Set<Int>) -> Int {
        let now = Date()
        var changes = 0
        for (index, address) in plan.addresses.enumerated() {
            guard let position = positions[address] else { continue }
            var status = statuses[position]
            let previous = status.state
            status.timeout = Duration(nanoseconds: plan.timeouts[index])
            let roundTrip = answers.roundTrips[index]
            if roundTrip != noAnswer {
                status.roundTripTime = Duration(nanoseconds: roundTrip)
                status.answeredBy = answers.answeredBy[index]
                status.consecutiveMisses = 0
                status.state = .up
                status.estimate.add(roundTrip)
                status.backoff = 0
                groupEstimate.add(roundTrip)
            } else {
                status.roundTripTime = nil
                status.answeredBy = nil
                if !heardLate.contains(position) { status.consecutiveMisses += 1 }
                if status.consecutiveMisses >= plan.settings.downAfterMisses {
                    status.state = .down
                }
            }
            if status.state != previous {
                status.since = now
                changes += 1
                let change = ReachabilityChange(previous: previous, status: status)
                for subscriber in subscribers.values {
                    subscriber.yield(change)
                }
            }
            statuses[position] = status
        }
        return changes
    }
}

/// What one sweep probes, handed to the probe thread.
private struct ProbePlan: Sendable {
    let round: UInt64
    let addresses: [UInt32]
    let ports: [UInt16?]
    /// Each target's wait in nanoseconds (see `ReachabilitySweeper.probeTimeout`).
    let timeouts: [UInt64]
    let previous: EchoRound?
    let settings: SweepSettings

    /// ICMP echo to every address, then TCP connects to the silent ones that name a port (the
    /// second opinion); without an ICMP socket, TCP connects to every address.
    func run(echoSocket: ICMPEchoSocket?) -> ProbeAnswers {
        guard let echoSocket else {
            let endpoints = addresses.indices.map { (addresses[$0], ports[$0] ?? settings.fallbackPort) }
            let roundTrips = TCPConnectProbe.run(
                endpoints, timeout: longestWait(of: addresses.indices), maxInFlight: settings.maxConnectsInFlight)
            return ProbeAnswers(roundTrips: roundTrips, answeredBy: roundTrips.map { $0 == noAnswer ? nil : .tcp }, lateAnswers: [])
        }
        let echoed = echoSocket.echo(
            to: addresses, round: UInt32(truncatingIfNeeded: round), timeouts: timeouts, attempts: settings.retries + 1,
            packetsPerSecond: settings.maxPacketsPerSecond, previous: previous)
        var roundTrips = echoed.roundTrips
        let lateAnswers = echoed.lateAnswers
        var answeredBy: [ProbeMethod?] = roundTrips.map { $0 == noAnswer ? nil : echoSocket.method }
        guard settings.tcpSecondOpinion else {
            return ProbeAnswers(roundTrips: roundTrips, answeredBy: answeredBy, lateAnswers: lateAnswers)
        }
        let silent = addresses.indices.filter { roundTrips[$0] == noAnswer && ports[$0] != nil }
        if !silent.isEmpty {
            let endpoints = silent.map { (addresses[$0], ports[$0] ?? settings.fallbackPort) }
            let tcpRoundTrips = TCPConnectProbe.run(endpoints, timeout: longestWait(of: silent), maxInFlight: settings.maxConnectsInFlight)
            for (position, index) in silent.enumerated() where tcpRoundTrips[position] != noAnswer {
                roundTrips[index] = tcpRoundTrips[position]
                answeredBy[index] = .tcp
            }
        }
        return ProbeAnswers(roundTrips: roundTrips, answeredBy: answeredBy, lateAnswers: lateAnswers)
    }

    /// The TCP connects of a batch share one timeout: the longest of their targets' waits.
    private func longestWait(of indices: some Sequence<Int>) -> Duration {
        Duration(nanoseconds: indices.reduce(0) { max($0, timeouts[$1]) })
    }
}

private struct ProbeAnswers: Sendable {
    let roundTrips: [UInt64]
    let answeredBy: [ProbeMethod?]
    /// Addresses that answered the previous sweep after its wait.
    let lateAnswers: [UInt32]
}
