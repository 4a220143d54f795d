import Fluent
import Foundation
import VSphere
import Vapor

/// Collects CPU and memory of every powered-on managed VM every 20 s (SPEC BEY-7): per vSphere
/// connection, one QueryPerf per batch of VMs, each asking for the last few 20 s samples so a
/// late pass loses nothing (ticks already stored are kept as they were). After an outage it
/// asks for everything since the newest stored sample, up to `backfillSeconds` (vSphere keeps
/// its 20 s samples for an hour); what is older stays a gap.
struct MetricsCollector {
    let database: any Database
    let vsphere: any VSphereProvider
    let logger: Logger
    let platformMetrics: PlatformMetrics
    var backfillSeconds: Int64 = 3600
    /// VMs per QueryPerf call (a few hundred keeps each answer a few hundred kilobytes).
    var batchSize = 250
    /// Each pass re-reads this many ticks, so a pass that starts late leaves no hole.
    static let overlapSamples = 3

    func pass(now: Date = Date()) async throws {
        let started = ContinuousClock.now
        let store = MetricsStore(database: database)
        let tick = MetricResolution.raw.seconds
        let currentTime = Int64(now.timeIntervalSince1970.rounded(.down))
        let behind = try await store.newestSampleTime().map { currentTime - $0 } ?? backfillSeconds
        let samples = Int(min(max(behind / tick + 1, Int64(Self.overlapSamples)), max(backfillSeconds / tick, 1)))

        let vms = try await VM.query(on: database)
            .filter(\.$status == .ready)
            .filter(\.$powerState == PowerState.poweredOn.rawValue)
            .filter(\.$vsphereReference != nil)
            .field(\.$id).field(\.$role.$id).field(\.$vsphereReference)
            .all()
        let connectionOfRole = try await Role.query(on: database).all()
            .reduce(into: [UUID: UUID]()) { $0[try $1.requireID()] = $1.$connection.id }
        var byConnection: [UUID: [String: [UUID]]] = [:]
        for vm in vms {
            guard let reference = vm.vsphereReference, let connection = connectionOfRole[vm.$role.id] else { continue }
            byConnection[connection, default: [:]][reference, default: []].append(try vm.requireID())
        }

        var collected = 0
        for (connectionID, vmsByReference) in byConnection {
            try Task.checkCancellation()
            guard let connection = try await VSphereConnection.find(connectionID, on: database) else { continue }
            do {
                guard let reader = try await vsphere.endpoint(for: connection) as? any VMUsageReading else { continue }
                let usage = try await reader.usage(of: Array(vmsByReference.keys), samples: samples, batchSize: batchSize)
                var rows: [MetricSample] = []
                for (reference, values) in usage {
                    for vmID in vmsByReference[reference] ?? [] {
                        for value in values {
                            let at = MetricResolution.raw.bucket(Int64(value.time.timeIntervalSince1970.rounded(.down)))
                            rows.append(MetricSample(vmID: vmID, at: at, cpu: value.cpu, memory: value.memory))
                        }
                    }
                }
                try await store.insert(rows)
                collected += usage.count
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                logger.warning("metrics: cannot read CPU and memory from \(connection.name): \(FlotillaError.describe(error))")
            }
        }
        platformMetrics.recordCollection(duration: ContinuousClock.now - started, vms: collected)
    }
}
