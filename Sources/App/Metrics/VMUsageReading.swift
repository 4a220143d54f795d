import Foundation
import VSphere

/// CPU and memory usage of one VM at one time, in percent.
struct VMUsage: Sendable, Equatable {
    var time: Date
    var cpu: Double?
    var memory: Double?
}

/// Reads many VMs' recent CPU and memory usage in a few batched calls (vSphere's QueryPerf).
/// `LiveVSphereEndpoint` reads it; endpoints without performance data (the in-memory
/// test doubles) do not conform, and the collector passes over their connections.
protocol VMUsageReading: Sendable {
    /// Per VM managed object ID, its newest `samples` 20 s values, oldest first.
    func usage(of references: [String], samples: Int, batchSize: Int) async throws -> [String: [VMUsage]]
}

extension LiveVSphereEndpoint: VMUsageReading {
    static let cpuCounter = "cpu.usage.average"
    static let memoryCounter = "mem.usage.average"

    func usage(of references: [String], samples: Int, batchSize: Int) async throws -> [String: [VMUsage]] {
        let results = try await client.queryPerformance(
            for: references.map { ManagedObjectReference(type: "VirtualMachine", value: $0) },
            counters: [Self.cpuCounter, Self.memoryCounter], maxSamples: samples, batchSize: batchSize)
        var usage: [String: [VMUsage]] = [:]
        for (entity, series) in results {
            var byTime: [Date: VMUsage] = [:]
            for sample in series[Self.cpuCounter]?.samples ?? [] {
                byTime[sample.timestamp, default: VMUsage(time: sample.timestamp)].cpu = sample.value
            }
            for sample in series[Self.memoryCounter]?.samples ?? [] {
                byTime[sample.timestamp, default: VMUsage(time: sample.timestamp)].memory = sample.value
            }
            usage[entity.value] = byTime.values.sorted { $0.time < $1.time }
        }
        return usage
    }
}
