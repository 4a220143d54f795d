// Sweeps a list of addresses with the Reachability library and reports each sweep's wall time,
// so scripts/bench-sweep can put it beside fping on the same list; in periodic mode it also
// reports its own open descriptors and resident memory, for soak runs.
//
// Usage: reachability-bench --targets FILE [--timeout-ms T] [--min-timeout-ms F] [--retries R]
//                           [--method auto|datagram|raw|tcp]
//                           [--sweeps N | --on-input | --interval S --duration S [--report-every S]]
// --on-input sweeps once per line read from standard input (the benchmark alternates the same
// warm sweeper with fping this way), until the input ends.
// Target file: one "ADDRESS [PORT]" per line; blank lines and # comments ignored.

import Foundation
import Reachability

struct Options {
    var targetFile = ""
    var timeoutMilliseconds = 500
    var minimumTimeoutMilliseconds: Int?
    var onInput = false
    var retries = 0
    var preference = ProbePreference.automatic
    var sweeps = 1
    var interval: Int?
    var duration = 60
    var reportEvery = 60
}

func usage(_ message: String) -> Never {
    FileHandle.standardError.write(
        Data(
            """
            reachability-bench: \(message)
            usage: reachability-bench --targets FILE [--timeout-ms T] [--min-timeout-ms F] [--retries R]
                                      [--method auto|datagram|raw|tcp]
                                      [--sweeps N | --on-input | --interval S --duration S [--report-every S]]

            """.utf8))
    exit(2)
}

func parseOptions(_ arguments: [String]) -> Options {
    var options = Options()
    var remaining = arguments[...]
    func number(for flag: String) -> Int {
        guard let text = remaining.popFirst(), let value = Int(text), value >= 0 else { usage("\(flag) needs a number") }
        return value
    }
    while let argument = remaining.popFirst() {
        switch argument {
        case "--targets":
            guard let path = remaining.popFirst() else { usage("--targets needs a file") }
            options.targetFile = path
        case "--timeout-ms": options.timeoutMilliseconds = number(for: argument)
        case "--min-timeout-ms": options.minimumTimeoutMilliseconds = number(for: argument)
        case "--on-input": options.onInput = true
        case "--retries": options.retries = number(for: argument)
        case "--sweeps": options.sweeps = max(number(for: argument), 1)
        case "--interval": options.interval = number(for: argument)
        case "--duration": options.duration = number(for: argument)
        case "--report-every": options.reportEvery = max(number(for: argument), 1)
        case "--method":
            switch remaining.popFirst() {
            case "auto": options.preference = .automatic
            case "datagram": options.preference = .only(.icmpDatagram)
            case "raw": options.preference = .only(.icmpRaw)
            case "tcp": options.preference = .only(.tcp)
            default: usage("--method is auto, datagram, raw or tcp")
            }
        case "-h", "--help": usage("sweeps the targets")
        default: usage("unknown argument \(argument)")
        }
    }
    if options.targetFile.isEmpty { usage("--targets is required") }
    return options
}

func loadTargets(_ path: String) throws -> [ReachabilityTarget] {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap { line in
        let fields = line.split(separator: " ")
        guard let first = fields.first, !first.hasPrefix("#") else { return nil }
        let port = fields.count > 1 ? UInt16(fields[1]) : nil
        guard let target = ReachabilityTarget(address: String(first), port: port) else { usage("not an IPv4 address: \(line)") }
        return target
    }
}

func milliseconds(_ duration: Duration) -> String {
    String(format: "%.1f", Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15)
}

/// Open descriptors and resident memory of this process, from /proc.
func processFootprint() -> String {
    let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let resident = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }?.split(separator: " ").dropFirst().first ?? "?"
    return "fds=\(descriptors) rss_kib=\(resident)"
}

/// Writes a line at once (print buffers when the output is a pipe, and soak runs are watched live).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func counts(_ statuses: [ReachabilityStatus]) -> String {
    let up = statuses.filter { $0.state == .up }.count
    let down = statuses.filter { $0.state == .down }.count
    return "up=\(up) down=\(down) unknown=\(statuses.count - up - down)"
}

let options = parseOptions(Array(CommandLine.arguments.dropFirst()))
do {
    let targets = try loadTargets(options.targetFile)
    let settings = SweepSettings(
        interval: .seconds(options.interval ?? 1), timeout: .milliseconds(options.timeoutMilliseconds),
        minimumTimeout: options.minimumTimeoutMilliseconds.map { .milliseconds($0) }, retries: options.retries)
    let sweeper = try ReachabilitySweeper(settings: settings, preference: options.preference)
    await sweeper.setTargets(targets)
    say(
        "targets=\(targets.count) method=\(sweeper.method.rawValue) timeout_ms=\(options.timeoutMilliseconds) "
            + "min_timeout_ms=\(milliseconds(settings.minimumTimeout)) retries=\(options.retries)")
    func sweepAndReport(always: Bool) async {
        let summary = await sweeper.sweep()
        if always || options.sweeps <= 10 || summary.round % UInt64(options.sweeps / 10) == 0 {
            say(
                "sweep=\(summary.round) wall_ms=\(milliseconds(summary.duration)) answered=\(summary.answered)/\(summary.probed) "
                    + "longest_timeout_ms=\(milliseconds(summary.longestTimeout)) late=\(summary.lateAnswers) \(processFootprint())")
        }
    }
    if options.onInput {
        while readLine() != nil { await sweepAndReport(always: true) }
    } else if options.interval == nil {
        for _ in 0..<options.sweeps { await sweepAndReport(always: false) }
    } else {
        let running = Task { await sweeper.run() }
        let started = ContinuousClock.now
        say("t=0 \(processFootprint())")
        while ContinuousClock.now - started < .seconds(options.duration) {
            try await Task.sleep(for: .seconds(min(options.reportEvery, options.duration)))
            // Measured just after a sweep ends, when its TCP sockets are closed: every report
            // then counts the same descriptors unless some leak.
            let reportedRound = await sweeper.lastSweep?.round
            while await sweeper.lastSweep?.round == reportedRound { try await Task.sleep(for: .milliseconds(5)) }
            let last = await sweeper.lastSweep
            let elapsed = Int((ContinuousClock.now - started).components.seconds)
            say(
                "t=\(elapsed) \(processFootprint()) sweeps=\(last?.round ?? 0) last_wall_ms=\(last.map { milliseconds($0.duration) } ?? "-") "
                    + counts(await sweeper.allStatuses()))
        }
        running.cancel()
        await running.value
    }
} catch {
    FileHandle.standardError.write(Data("reachability-bench: \(error)\n".utf8))
    exit(1)
}
