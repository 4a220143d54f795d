// Times the VSphere library's listings (six properties, and every VMSummary field) and QueryPerf against a vCenter or vcsim, the same calls
// scripts/bench_vsphere_pyvmomi.py makes through pyvmomi (see scripts/bench-vsphere).
//
//   vsphere-bench --url https://127.0.0.1:PORT/sdk --username U --password P [--thumbprint SHA256]
//                 [--iterations 5] [--full-listing yes|no]
//
// Prints `name=value` lines: best-of-N seconds per operation, counts, and peak RSS in MiB.
import Foundation
import VSphere

#if canImport(Glibc)
import Glibc
#endif

struct Arguments {
    var url: URL
    var username: String
    var password: String
    var thumbprint: String?
    var iterations = 5
    /// Also time the listing of every VMSummary field (off for the memory run of the six-property scenario).
    var fullListing = true

    init() throws {
        var values: [String: String] = [:]
        var iterator = CommandLine.arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            guard flag.hasPrefix("--"), let value = iterator.next() else {
                throw BenchError(
                    "usage: vsphere-bench --url URL --username U --password P [--thumbprint T] [--iterations N] [--full-listing yes|no]")
            }
            values[String(flag.dropFirst(2))] = value
        }
        guard let urlText = values["url"], let url = URL(string: urlText), let username = values["username"],
            let password = values["password"]
        else {
            throw BenchError("--url, --username and --password are required")
        }
        self.url = url
        self.username = username
        self.password = password
        self.thumbprint = values["thumbprint"]
        if let iterations = values["iterations"].flatMap(Int.init) { self.iterations = max(1, iterations) }
        fullListing = values["full-listing"] != "no"
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Best (minimum) wall time of `iterations` runs, after one untimed warm-up run.
func measure<T>(_ iterations: Int, _ body: () async throws -> T) async rethrows -> (seconds: Double, result: T) {
    let clock = ContinuousClock()
    var result = try await body()
    var best = Duration.seconds(1_000_000)
    for _ in 0..<iterations {
        let start = clock.now
        result = try await body()
        best = min(best, clock.now - start)
    }
    return (Double(best.components.seconds) + Double(best.components.attoseconds) / 1e18, result)
}

func peakResidentMiB() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024  // Linux reports KiB
}

do {
    let arguments = try Arguments()
    let client = try await VSphereClient.connect(
        url: arguments.url,
        username: arguments.username,
        password: arguments.password,
        trust: arguments.thumbprint.map { .pinnedSHA256($0) } ?? .system,
        timeout: .seconds(300)
    )
    let listing = try await measure(arguments.iterations) { try await client.listVirtualMachines(fields: .overview) }
    let fullListing =
        arguments.fullListing
        ? try await measure(arguments.iterations) { try await client.listVirtualMachines(fields: .all) }.seconds
        : nil
    let vms = listing.result.filter { !$0.isTemplate }.map(\.reference)
    _ = try await client.performanceCounters()
    let performance = try await measure(arguments.iterations) {
        try await client.queryPerformance(for: vms, counters: ["cpu.usage.average", "mem.usage.average"], maxSamples: 15)
    }
    let samples = performance.result.values.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.samples.count } }
    print("vms=\(listing.result.count)")
    print("listing_paths=\(VMSummary.Fields.overview.propertyPaths.joined(separator: ","))")
    print(String(format: "listing_seconds=%.4f", listing.seconds))
    print("full_listing_paths=\(VMSummary.Fields.all.propertyPaths.joined(separator: ","))")
    if let fullListing { print(String(format: "full_listing_seconds=%.4f", fullListing)) }
    print("perf_entities=\(performance.result.count)")
    print("perf_samples=\(samples)")
    print(String(format: "queryperf_seconds=%.4f", performance.seconds))
    print(String(format: "peak_rss_mib=%.1f", peakResidentMiB()))
    try await client.close()
} catch {
    FileHandle.standardError.write(Data("vsphere-bench: \(error)\n".utf8))
    exit(1)
}
