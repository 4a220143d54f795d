import Foundation
import NIOConcurrencyHelpers

/// One value at one time, in real units (percent as 0...100, not vSphere's hundredths).
public struct PerformanceSample: Sendable, Equatable {
    public var timestamp: Date
    public var value: Double
}

/// One counter's series for one entity, oldest sample first.
public struct PerformanceSeries: Sendable, Equatable {
    /// `group.name.rollup`, e.g. `cpu.usage.average`.
    public var counter: String
    /// vSphere's unit key: `percent`, `kiloBytes`, `megaHertz`, ...
    public var unit: String
    /// The instance ("" for the aggregate).
    public var instance: String
    public var samples: [PerformanceSample]
}

/// A performance counter's identity on this endpoint (keys differ between vCenter and ESXi).
public struct PerformanceCounter: Sendable, Hashable {
    public var key: Int
    public var name: String
    public var unit: String
}

/// Counter definitions are large (hundreds) and fixed per endpoint: read them once.
final class PerformanceCounterCache: Sendable {
    private let counters = NIOLockedValueBox<[String: PerformanceCounter]?>(nil)

    func get() -> [String: PerformanceCounter]? { counters.withLockedValue { $0 } }
    func set(_ value: [String: PerformanceCounter]) { counters.withLockedValue { $0 = value } }
}

extension VSphereClient {
    /// All counters by name (`cpu.usage.average`).
    public func performanceCounters() async throws -> [String: PerformanceCounter] {
        if let cached = performanceCounters.get() { return cached }
        guard let manager = serviceContent.performanceManager else {
            throw VSphereError.notFound("PerformanceManager on this endpoint")
        }
        let infos = try await property("perfCounter", of: manager)?.children ?? []
        var counters: [String: PerformanceCounter] = [:]
        for info in infos {
            guard let key = info.child("key")?.intValue,
                let group = info.descendant("groupInfo", "key")?.text,
                let name = info.descendant("nameInfo", "key")?.text,
                let rollup = info.child("rollupType")?.text
            else { continue }
            let fullName = "\(group).\(name).\(rollup)"
            counters[fullName] = PerformanceCounter(key: key, name: fullName, unit: info.descendant("unitInfo", "key")?.text ?? "")
        }
        performanceCounters.set(counters)
        return counters
    }

    /// One batched QueryPerf for many entities (VMs or hosts) at the real-time interval.
    /// - Parameters:
    ///   - counters: counter names; unknown names fail with `notFound`.
    ///   - maxSamples: the newest samples per series (20 s each: 180 is one hour); nil for every
    ///     sample since `since` (vcsim needs a limit). The real-time 20 s interval covers about an
    ///     hour; longer windows use historical intervals (300, 1800, 7200 s).
    ///   - since: only samples after this time.
    ///   - batchSize: entities per QueryPerf; batches run concurrently (at most 4 at a time).
    /// - Returns: per entity, per counter name, the aggregate series oldest-first.
    public func queryPerformance(
        for entities: [ManagedObjectReference],
        counters names: [String] = ["cpu.usage.average", "mem.usage.average"],
        maxSamples: Int? = 15,
        intervalSeconds: Int = 20,
        since: Date? = nil,
        batchSize: Int = 1000
    ) async throws -> [ManagedObjectReference: [String: PerformanceSeries]] {
        guard let manager = serviceContent.performanceManager else {
            throw VSphereError.notFound("PerformanceManager on this endpoint")
        }
        let known = try await performanceCounters()
        let counters = try names.map { name in
            guard let counter = known[name] else { throw VSphereError.notFound("performance counter \(name)") }
            return counter
        }
        let byKey = Dictionary(counters.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        let metricIDs = counters.map { DataObject(nil, [("counterId", $0.key), ("instance", "")]) }
        let startTime = since.map(Self.formatTimestamp)
        let batches = stride(from: 0, to: entities.count, by: max(batchSize, 1)).map {
            Array(entities[$0..<min($0 + max(batchSize, 1), entities.count)])
        }
        return try await withThrowingTaskGroup(of: [ManagedObjectReference: [String: PerformanceSeries]].self) { group in
            var results: [ManagedObjectReference: [String: PerformanceSeries]] = [:]
            var running = 0
            for batch in batches {
                if running == 4, let done = try await group.next() {
                    results.merge(done) { first, _ in first }
                    running -= 1
                }
                let specs = batch.map { entity in
                    DataObject(
                        nil,
                        [
                            ("entity", entity), ("startTime", startTime), ("maxSample", maxSamples),
                            ("metricId", metricIDs), ("intervalId", intervalSeconds),
                        ])
                }
                group.addTask {
                    var decoded: [ManagedObjectReference: [String: PerformanceSeries]] = [:]
                    decoded.reserveCapacity(batch.count)
                    _ = try await self.connection.invoke(
                        SOAPOperation("QueryPerf", on: manager, [("querySpec", specs)]),
                        streaming: []
                    ) { metric in
                        decoded.merge(Self.decodePerformance([metric], counters: byKey)) { first, _ in first }
                    }
                    return decoded
                }
                running += 1
            }
            for try await done in group { results.merge(done) { first, _ in first } }
            return results
        }
    }

    /// PerfEntityMetric elements → series. vSphere reports percent in hundredths.
    static func decodePerformance(
        _ metrics: [SOAPElement],
        counters: [Int: PerformanceCounter]
    ) -> [ManagedObjectReference: [String: PerformanceSeries]] {
        var results: [ManagedObjectReference: [String: PerformanceSeries]] = [:]
        for metric in metrics {
            guard let entity = ManagedObjectReference(metric.child("entity")) else { continue }
            let timestamps = metric.children("sampleInfo").map { $0.child("timestamp").flatMap { parseTimestamp($0.text) } }
            var entitySeries: [String: PerformanceSeries] = [:]
            for series in metric.children("value") {
                guard let key = series.descendant("id", "counterId")?.intValue, let counter = counters[key] else { continue }
                let scale = counter.unit == "percent" ? 0.01 : 1
                let values = series.children("value").compactMap { Double($0.text) }
                // Values pair with sampleInfo by position (vcsim omits zeros; pair what is there).
                var samples: [PerformanceSample] = []
                for (index, value) in values.enumerated() where index < timestamps.count {
                    if let timestamp = timestamps[index] {
                        samples.append(PerformanceSample(timestamp: timestamp, value: value * scale))
                    }
                }
                samples.sort { $0.timestamp < $1.timestamp }
                let instance = series.descendant("id", "instance")?.text ?? ""
                if instance.isEmpty || entitySeries[counter.name] == nil {
                    entitySeries[counter.name] = PerformanceSeries(
                        counter: counter.name, unit: counter.unit, instance: instance, samples: samples)
                }
            }
            results[entity] = entitySeries
        }
        return results
    }

    /// xsd:dateTime with any number of fractional digits (vSphere sends up to 9) and a zone.
    static func parseTimestamp(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[range] {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard bytes.count >= 19, let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                fraction += Double(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
        }
        var offsetSeconds = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            guard let hours = number((index + 1)..<(index + 3)), let minutes = number((index + 4)..<(index + 6)) else { return nil }
            offsetSeconds = (hours * 3600 + minutes * 60) * (bytes[index] == UInt8(ascii: "+") ? 1 : -1)
        }
        // Days from the civil date (Howard Hinnant's algorithm), proleptic Gregorian, UTC.
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = days * 86400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    static func formatTimestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}
