import Foundation
import Reachability

/// Every managed VM's health, in memory, for the live pages (SPEC DASH-1, DASH-6).
///
/// Fed by the reachability sweeps and the vSphere inventory feed; each health change gets a
/// sequence number and is kept in a bounded window, so a page that reconnects asks for what it
/// missed and a subscriber is only woken, never handed a growing queue. A page costs the same
/// with 5,000 VMs as with 50: it receives changes and role counts, never the whole fleet.
///
/// Only the instance leading the sweep (`DashboardRuntime.lead`) probes; the others take its
/// verdicts from the database (`applyShared`), so every instance's pages show the same health.
actor FleetStatus {
    /// What the records say about a VM; reloaded from the database.
    struct Record: Sendable, Equatable {
        var id: UUID
        var hostName: String
        var ip: String
        var role: String
        var connectionID: UUID
        var reference: String?
        var powerState: String?
    }

    struct Entry: Sendable {
        var record: Record
        var powerState: String?
        var guest: GuestActivity = .unknown
        var probe: ProbeReading?
        var baselineSeconds: Double?
        /// When the VM's monitor agent fell silent (read from the Monitoring module's records).
        var agentSilentSince: Date?
        /// The leading instance's verdict, on an instance that does not probe itself.
        var shared: SharedHealth.Verdict?
        var health: VMHealth = .unknown
        var since: Date?

        /// Worked out when asked: the round trip in it changes with every sweep.
        var reason: String {
            if probe == nil, let shared { return shared.reason }
            return HealthRule.reason(health, probe: probe, guest: guest, agentSilentSince: agentSilentSince)
        }
    }

    /// One health change, as the event stream and the history carry it.
    struct Change: Sendable, Codable, Equatable {
        var sequence: UInt64
        var vmID: UUID
        var role: String
        var health: VMHealth
        var previous: VMHealth
        var label: String
        var reason: String
        var reachable: Bool
        var at: Date
    }

    struct RoleCount: Sendable, Codable, Equatable {
        var role: String
        var total: Int
        var reachable: Int
        var unreachable: Int
        /// Not probed long enough to say.
        var checking: Int
    }

    struct Summary: Sendable, Codable, Equatable {
        var total: Int
        var reachable: Int
        var unreachable: Int
        var checking: Int
        var roles: [RoleCount]
        /// The latest change's sequence number: a stream opened with it misses nothing.
        var sequence: UInt64
    }

    /// Changes kept for reconnecting pages; one further behind reloads.
    static let window = 4096
    /// Weight of a new round trip in the running baseline.
    static let baselineWeight = 0.1

    private var entries: [UUID: Entry] = [:]
    private var byAddress: [String: UUID] = [:]
    private var byReference: [String: UUID] = [:]
    private var recent: [Change] = []
    private var sequence: UInt64 = 0
    private var cachedSummary: Summary?
    private var subscribers: [Int: AsyncStream<Void>.Continuation] = [:]
    private var nextSubscriber = 0
    /// Whether this instance sweeps now; while it does, the shared verdicts are not taken.
    private(set) var isLeading = false
    /// Told whenever what the fleet shows may have changed: a health, a count, or a reason's
    /// round trip (`KeptAnswers` forgets the answers that show them).
    private let whenChanged: @Sendable () -> Void

    init(whenChanged: @escaping @Sendable () -> Void = {}) {
        self.whenChanged = whenChanged
    }

    /// Replaces the set of watched VMs. VMs that stay keep their live state; vSphere's power
    /// state from the records is used until the feed says otherwise. Returns the changes (a
    /// VM that left is not a change; it is simply gone from the counts).
    @discardableResult
    func setRecords(_ records: [Record]) -> [Change] {
        var next: [UUID: Entry] = [:]
        next.reserveCapacity(records.count)
        var changed = records.count != entries.count
        for record in records {
            if var entry = entries[record.id] {
                if entry.record != record {
                    changed = true
                    if entry.record.powerState != record.powerState { entry.powerState = record.powerState }
                    entry.record = record
                }
                next[record.id] = entry
            } else {
                changed = true
                next[record.id] = Entry(record: record, powerState: record.powerState)
            }
        }
        entries = next
        byAddress = Dictionary(next.values.map { ($0.record.ip, $0.record.id) }, uniquingKeysWith: { first, _ in first })
        byReference = Dictionary(
            next.values.compactMap { entry in entry.record.reference.map { (Self.key(entry.record.connectionID, $0), entry.record.id) } },
            uniquingKeysWith: { first, _ in first })
        if changed {
            // New or removed VMs change the counts without a health change: pages refresh them.
            cachedSummary = nil
            whenChanged()
            for continuation in subscribers.values { continuation.yield() }
        }
        // The same records again (the reload every few seconds) change nothing shown unless a
        // health changes with them.
        return publish(reevaluate(Array(next.keys), showsNewReadings: false))
    }

    /// Takes one sweep's statuses (by address).
    func applyProbes(_ readings: [(address: String, reading: ProbeReading)]) -> [Change] {
        var touched: [UUID] = []
        touched.reserveCapacity(readings.count)
        for (address, reading) in readings {
            guard let id = byAddress[address], var entry = entries[id] else { continue }
            if reading.state == .up, reading.consecutiveMisses == 0, let rtt = reading.roundTripSeconds {
                entry.baselineSeconds = entry.baselineSeconds.map { $0 + (rtt - $0) * Self.baselineWeight } ?? rtt
            }
            entry.probe = reading
            entries[id] = entry
            touched.append(id)
        }
        return publish(reevaluate(touched))
    }

    /// Takes what vSphere reports about one machine (power state, guest activity).
    func applyMachine(connectionID: UUID, reference: String, powerState: String?, guest: GuestActivity) -> [Change] {
        guard let id = byReference[Self.key(connectionID, reference)], var entry = entries[id] else { return [] }
        entry.powerState = powerState
        entry.guest = guest
        entries[id] = entry
        return publish(reevaluate([id]))
    }

    /// Takes the VMs whose monitor agent is silent now (every other VM's agent reports or none is
    /// installed).
    func setSilentAgents(_ silent: [UUID: Date]) -> [Change] {
        var touched: [UUID] = []
        for (id, entry) in entries where entry.agentSilentSince != silent[id] {
            entries[id]?.agentSilentSince = silent[id]
            touched.append(id)
        }
        return publish(reevaluate(touched))
    }

    /// Starts or stops taking verdicts from this instance's own sweeps. On leaving the lead the
    /// probes are forgotten, so the shared verdicts of the new leader count again.
    func setLeading(_ leading: Bool) -> [Change] {
        isLeading = leading
        guard !leading else { return [] }
        for id in entries.keys { entries[id]?.probe = nil }
        return publish(reevaluate(Array(entries.keys)))
    }

    /// Takes the leading instance's verdicts (ignored while this instance leads itself).
    func applyShared(_ verdicts: [UUID: SharedHealth.Verdict]) -> [Change] {
        guard !isLeading else { return [] }
        var touched: [UUID] = []
        for (id, verdict) in verdicts where entries[id] != nil && entries[id]?.shared != verdict {
            entries[id]?.shared = verdict
            touched.append(id)
        }
        return publish(reevaluate(touched))
    }

    /// The addresses to probe, one per VM.
    func targets(port: UInt16) -> [ReachabilityTarget] {
        entries.values.compactMap { ReachabilityTarget(address: $0.record.ip, port: port) }
    }

    func entry(_ id: UUID) -> Entry? { entries[id] }

    /// The current health of the given VMs (unknown ones are left out).
    func health(of ids: [UUID]) -> [UUID: Entry] {
        var found: [UUID: Entry] = [:]
        for id in ids { if let entry = entries[id] { found[id] = entry } }
        return found
    }

    /// How many VMs are in each health state (Prometheus' `flotilla_vms`).
    func countsByHealth() -> [String: Int] {
        entries.values.reduce(into: [:]) { counts, entry in counts[entry.health.rawValue, default: 0] += 1 }
    }

    func summary() -> Summary {
        if let cachedSummary { return cachedSummary }
        var roles: [String: RoleCount] = [:]
        for entry in entries.values {
            var count = roles[entry.record.role] ?? RoleCount(role: entry.record.role, total: 0, reachable: 0, unreachable: 0, checking: 0)
            count.total += 1
            if entry.health.isReachable {
                count.reachable += 1
            } else if entry.health == .unknown {
                count.checking += 1
            } else {
                count.unreachable += 1
            }
            roles[entry.record.role] = count
        }
        let sorted = roles.values.sorted { $0.role < $1.role }
        let summary = Summary(
            total: entries.count, reachable: sorted.reduce(0) { $0 + $1.reachable },
            unreachable: sorted.reduce(0) { $0 + $1.unreachable }, checking: sorted.reduce(0) { $0 + $1.checking },
            roles: sorted, sequence: sequence)
        cachedSummary = summary
        return summary
    }

    /// The changes after `sequence`, or nil when some of them have left the window (the page
    /// must reload).
    func changes(after sequence: UInt64) -> [Change]? {
        if sequence >= self.sequence { return [] }
        guard let first = recent.first, first.sequence <= sequence + 1 else { return nil }
        return Array(recent.drop { $0.sequence <= sequence })
    }

    /// A wake-up after every batch of changes (at most one waiting: the subscriber then asks
    /// for the changes since the last it saw).
    func subscribe() -> (id: Int, wakeUps: AsyncStream<Void>) {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let id = nextSubscriber
        nextSubscriber += 1
        subscribers[id] = continuation
        return (id, stream)
    }

    func unsubscribe(_ id: Int) {
        subscribers.removeValue(forKey: id)?.finish()
    }

    var subscriberCount: Int { subscribers.count }

    /// Ends every subscription (server shutdown), so open event streams close.
    func finishAll() {
        for continuation in subscribers.values { continuation.finish() }
        subscribers = [:]
    }

    /// Works out the health of the given VMs again. `showsNewReadings`: their entries took new
    /// readings, whose round trip or evidence the reasons show even when no health changes.
    private func reevaluate(_ ids: [UUID], showsNewReadings: Bool = true) -> [Change] {
        if showsNewReadings, !ids.isEmpty { whenChanged() }
        let now = Date()
        var changes: [Change] = []
        for id in ids {
            guard var entry = entries[id] else { continue }
            let health: VMHealth
            if entry.probe == nil, let shared = entry.shared {
                health = shared.health
            } else {
                health = HealthRule.health(
                    probe: entry.probe, baselineSeconds: entry.baselineSeconds, powerState: entry.powerState, guest: entry.guest,
                    agentSilentSince: entry.agentSilentSince)
            }
            let previous = entry.health
            guard health != previous else { continue }
            entry.health = health
            entry.since = now
            sequence += 1
            changes.append(
                Change(
                    sequence: sequence, vmID: id, role: entry.record.role, health: health, previous: previous,
                    label: health.label, reason: entry.reason, reachable: health.isReachable, at: now))
            entries[id] = entry
        }
        if !showsNewReadings, !changes.isEmpty { whenChanged() }
        return changes
    }

    private func publish(_ changes: [Change]) -> [Change] {
        guard !changes.isEmpty else { return changes }
        cachedSummary = nil
        recent.append(contentsOf: changes)
        if recent.count > Self.window { recent.removeFirst(recent.count - Self.window) }
        for continuation in subscribers.values { continuation.yield() }
        return changes
    }

    private static func key(_ connectionID: UUID, _ reference: String) -> String {
        connectionID.uuidString + "/" + reference
    }
}
