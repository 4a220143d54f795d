// Runs `uname -a` on many hosts through RemoteShell's ShellPool and reports wall time and peak
// memory, to compare with other tools (scripts/bench-remoteshell runs Ansible on the same hosts).
//
// Usage: remoteshell-bench [--hosts FILE] [--concurrency C] [--key PATH] [--rounds R] [USER:PASSWORD@HOST:PORT ...]
// Host file: one host per line, "HOST PORT USER [PASSWORD]"; blank lines and # comments ignored.
// Without a password on a line, --key (an unencrypted OpenSSH ed25519/ECDSA key) is used.

import Foundation
import RemoteShell

struct Options {
    var hostFile: String?
    var inlineHosts: [String] = []
    var concurrency = 50
    var keyPath: String?
    var rounds = 2
}

func usage(_ message: String) -> Never {
    FileHandle.standardError.write(
        Data(
            "remoteshell-bench: \(message)\nusage: remoteshell-bench [--hosts FILE] [--concurrency C] [--key PATH] [--rounds R] [USER:PASSWORD@HOST:PORT ...]\n"
                .utf8))
    exit(2)
}

func parseOptions(_ arguments: [String]) -> Options {
    var options = Options()
    var remaining = arguments[...]
    func value(for flag: String) -> String {
        guard let value = remaining.popFirst() else { usage("\(flag) needs a value") }
        return value
    }
    while let argument = remaining.popFirst() {
        switch argument {
        case "--hosts": options.hostFile = value(for: argument)
        case "--key": options.keyPath = value(for: argument)
        case "--concurrency":
            guard let number = Int(value(for: argument)), number > 0 else { usage("--concurrency needs a positive number") }
            options.concurrency = number
        case "--rounds":
            guard let number = Int(value(for: argument)), number > 0 else { usage("--rounds needs a positive number") }
            options.rounds = number
        case "-h", "--help": usage("runs uname -a on every host")
        default: options.inlineHosts.append(argument)
        }
    }
    return options
}

func target(host: String, port: String, user: String, password: String?, key: SSHPrivateKey?) -> SSHTarget {
    guard let portNumber = Int(port) else { usage("bad port \(port) for \(host)") }
    if let password {
        return SSHTarget(host: host, port: portNumber, user: user, authentication: .password(password))
    }
    guard let key else { usage("no password for \(user)@\(host):\(port) and no --key") }
    return SSHTarget(host: host, port: portNumber, user: user, authentication: .privateKey(key))
}

func loadTargets(_ options: Options) throws -> [SSHTarget] {
    let key = try options.keyPath.map { try SSHPrivateKey(contentsOfFile: $0) }
    var targets: [SSHTarget] = []
    if let hostFile = options.hostFile {
        for line in try String(contentsOfFile: hostFile, encoding: .utf8).split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields = trimmed.split(separator: " ", maxSplits: 3).map(String.init)
            guard fields.count >= 3 else { usage("host file line needs HOST PORT USER [PASSWORD]: \(line)") }
            targets.append(
                target(host: fields[0], port: fields[1], user: fields[2], password: fields.count > 3 ? fields[3] : nil, key: key))
        }
    }
    for spec in options.inlineHosts {
        // USER:PASSWORD@HOST:PORT or USER@HOST:PORT (key authentication).
        guard let at = spec.lastIndex(of: "@"), let colon = spec[at...].lastIndex(of: ":") else { usage("bad host \(spec)") }
        let credentials = spec[..<at].split(separator: ":", maxSplits: 1).map(String.init)
        let host = String(spec[spec.index(after: at)..<colon])
        let port = String(spec[spec.index(after: colon)...])
        targets.append(
            target(host: host, port: port, user: credentials[0], password: credentials.count > 1 ? credentials[1] : nil, key: key))
    }
    return targets
}

func peakMemoryMiB() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024  // Linux reports KiB.
}

let options = parseOptions(Array(CommandLine.arguments.dropFirst()))
let targets: [SSHTarget]
do {
    targets = try loadTargets(options)
} catch {
    usage("\(error)")
}
guard !targets.isEmpty else { usage("no hosts given") }

let pool = ShellPool(
    hostKeyStore: InMemoryHostKeyStore(), options: SSHConnectionOptions(connectTimeout: .seconds(10), handshakeTimeout: .seconds(60)))
var allSucceeded = true
for round in 1...options.rounds {
    let start = ContinuousClock.now
    let results = await pool.fanOut(to: targets, command: Command("uname", "-a"), concurrency: options.concurrency, timeout: .seconds(60))
    let elapsed = ContinuousClock.now - start
    let succeeded = results.filter(\.succeeded).count
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let phase = round == 1 ? "connect+run" : "pooled connections"
    print(
        String(
            format: "remoteshell round %d (%@): hosts=%d ok=%d failed=%d concurrency=%d wall=%.3fs", round, phase, targets.count, succeeded,
            targets.count - succeeded, options.concurrency, seconds))
    var failuresByKind: [String: (count: Int, example: String)] = [:]
    for case let failure? in results.map(\.failure) {
        failuresByKind["\(failure.kind)", default: (0, "\(failure)")].count += 1
    }
    for (kind, summary) in failuresByKind.sorted(by: { $0.key < $1.key }) {
        print("  \(summary.count) x \(kind), e.g. \(summary.example)")
    }
    allSucceeded = allSucceeded && succeeded == targets.count
}
await pool.shutdown()
print(String(format: "remoteshell peak memory (maxrss): %.1f MiB", peakMemoryMiB()))
exit(allSucceeded ? 0 : 1)
