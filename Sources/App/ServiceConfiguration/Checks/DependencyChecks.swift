import Foundation
import NIOConcurrencyHelpers
import ProgramRunner
import RemoteShell
import Vapor

/// Checks that a profile's dependencies are ready, not merely listening (SPEC CFG-2).
///
/// Every check of every chosen dependency VM runs from the platform and from each target VM at
/// once: a target is where the service will connect from, so a firewall or a missing route
/// there must show before anything is configured. On each origin the same stdlib-only Python
/// checker (`Resources/ServiceChecks/servicecheck.py`) speaks the service's protocol; it reaches
/// a target over SSH on standard input, so nothing is installed and no password appears in a
/// command line. Meanwhile one SSH command on each dependency VM looks at its processes: that
/// tells "service not running" from "port closed", and a lab stand-in (declared in
/// `/run/flotilla-stand-ins/NAME`) from the real server, whose result then says it was a
/// process-and-port check.
struct DependencyChecks: Sendable {
    let shell: any GuestShell
    let login: GuestLogin
    /// The checker program on the platform's machine.
    let checkerPath: String

    static let platformOrigin = "platform"
    /// Where a guest declares that a process is a stand-in, not the server it is named after.
    static let standInDirectory = "/run/flotilla-stand-ins"
    /// Added to the per-check time limit for SSH and the checker's own start.
    static let originOverhead: Duration = .seconds(3)

    /// Runs every check; throws a validation error only for bad input (a dependency role without
    /// its VM, a VM of another role, a password secret without a value). Unreachable VMs,
    /// refused logins and stopped services are failed results, never errors.
    func run(
        profile: ServiceProfile, dependencies: [String: VM], targets: [VM], secrets: [String: String],
        timeout: Duration = .seconds(4)
    ) async throws -> DependencyCheckReport {
        let clock = ContinuousClock()
        let started = clock.now
        let probes = try Self.probes(profile: profile, dependencies: dependencies, secrets: secrets)
        let program = try String(contentsOfFile: checkerPath, encoding: .utf8)
        let input = try Self.checkerInput(program: program, probes: probes, timeout: timeout)
        let dependencyVMs = Self.uniqueVMs(probes.map(\.vm))

        async let inspections = inspect(dependencyVMs, probes: probes, timeout: timeout + Self.originOverhead)
        let outcomes = await withTaskGroup(of: (Origin, OriginOutcome).self) { group in
            group.addTask { (.platform, await runOnPlatform(input, timeout: timeout + Self.originOverhead)) }
            for vm in Self.uniqueVMs(targets) {
                group.addTask { (.target(vm), await runOnTarget(vm, input, timeout: timeout + Self.originOverhead)) }
            }
            var outcomes: [(Origin, OriginOutcome)] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        let processes = await inspections
        var results: [DependencyCheckReport.Result] = []
        for (origin, outcome) in outcomes {
            for probe in probes {
                results.append(Self.result(of: probe, from: origin, outcome: outcome, processes: processes[probe.vmKey]))
            }
        }
        results.sort { Self.order($0) < Self.order($1) }
        let failures = results.filter { !$0.passed }.map {
            "\($0.service) on \($0.vm) (\($0.address):\($0.port)) from \($0.origin): \(Self.describe($0.layer)): \($0.message)"
        }
        let elapsed = clock.now - started
        return DependencyCheckReport(
            passed: failures.isEmpty,
            elapsedMilliseconds: Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000),
            results: results, failures: failures)
    }

    // MARK: - What to check

    /// One check of one dependency VM, as every origin runs it.
    struct Probe: Sendable {
        var id: String
        var role: String
        var vm: VM
        var vmKey: String
        var check: ServiceProfile.Check
        var port: Int
        var password: String?
        /// Process names that count as the service running on the dependency VM.
        var processNames: [String]
    }

    /// The process names of a kind's usual servers (the first is the usual one); `tcp` has none.
    static func processNames(for check: ServiceProfile.Check) -> [String] {
        if let process = check.process { return [process] }
        switch check.kind {
        case .redis: return ["redis-server"]
        case .mysql: return ["mysqld", "mariadbd"]
        case .rabbitmq: return ["beam.smp", "rabbitmq-server"]
        case .mongo: return ["mongod"]
        case .nfs: return ["nfsd"]
        case .tcp: return []
        }
    }

    static func probes(profile: ServiceProfile, dependencies: [String: VM], secrets: [String: String]) throws -> [Probe] {
        var probes: [Probe] = []
        for role in profile.dependencies.keys.sorted() {
            guard let vm = dependencies[role] else { throw FlotillaError.validation("choose a VM for the dependency role '\(role)'") }
            guard vm.$role.value?.name == role else {
                throw FlotillaError.validation("\(vm.hostName) is not a VM of the role '\(role)'")
            }
            guard IPAddress(vm.ip) != nil else { throw FlotillaError.validation("\(vm.hostName) has no valid address") }
            for check in profile.dependencies[role]?.checks ?? [] {
                guard let port = check.effectivePort else { continue }
                var password: String?
                if let name = check.passwordSecret {
                    guard let value = secrets[name] else { throw FlotillaError.validation("the secret '\(name)' has no value") }
                    password = value
                }
                probes.append(
                    Probe(
                        id: String(probes.count), role: role, vm: vm, vmKey: vm.id?.uuidString ?? vm.hostName, check: check, port: port,
                        password: password, processNames: processNames(for: check)))
            }
        }
        return probes
    }

    // MARK: - Running the checker

    private struct CheckerCheck: Encodable {
        var id: String
        var kind: String
        var host: String
        var port: Int
        var user: String?
        var password: String?
        var database: String?
        var vhost: String?
        var export: String?
    }

    private struct CheckerPlan: Encodable {
        var timeout: Double
        var checks: [CheckerCheck]
    }

    /// One answer of the checker (`servicecheck.py`'s output).
    struct CheckerResult: Decodable, Sendable {
        var id: String
        var connected: Bool
        var passed: Bool
        var layer: String?
        var message: String
        var milliseconds: Int
    }

    private struct CheckerOutput: Decodable {
        var results: [CheckerResult]
    }

    /// Reads the program (first line, a JSON string) and runs it as `servicecheck.py`; the program
    /// then reads the plan from the next line. Nothing of the input is on the command line.
    static let bootstrap =
        #"import json,sys;exec(compile(json.loads(sys.stdin.readline())["program"],"servicecheck.py","exec"),{"__name__":"__main__"})"#

    static func checkerInput(program: String, probes: [Probe], timeout: Duration) throws -> [UInt8] {
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        let plan = CheckerPlan(
            timeout: seconds,
            checks: probes.map {
                CheckerCheck(
                    id: $0.id, kind: $0.check.kind.rawValue, host: $0.vm.ip, port: $0.port, user: $0.check.user, password: $0.password,
                    database: $0.check.database, vhost: $0.check.vhost, export: $0.check.export)
            })
        let encoder = JSONEncoder()
        var input = try encoder.encode(["program": program])
        input.append(UInt8(ascii: "\n"))
        input.append(try encoder.encode(plan))
        input.append(UInt8(ascii: "\n"))
        return Array(input)
    }

    enum Origin: Sendable {
        case platform
        case target(VM)
    }

    enum OriginOutcome: Sendable {
        case answered([String: CheckerResult])
        /// The checker could not run there; the reason.
        case unavailable(String)
    }

    private func runOnTarget(_ vm: VM, _ input: [UInt8], timeout: Duration) async -> OriginOutcome {
        do {
            let user = vm.$role.value?.sshUser ?? "root"
            let target = try await login.target(for: vm, user: user)
            let result = try await Self.first(within: timeout) {
                try await shell.run(Command("python3", "-c", Self.bootstrap), on: target, standardInput: input, timeout: timeout)
            }
            guard result.exitStatus == 0 else {
                return .unavailable("the checker failed on \(vm.hostName): \(Self.lastLine(result.errorOutput))")
            }
            return try Self.decode(result.output)
        } catch {
            return .unavailable("cannot run the check on \(vm.hostName): \(FlotillaError.describe(error))")
        }
    }

    private func runOnPlatform(_ input: [UInt8], timeout: Duration) async -> OriginOutcome {
        guard let python = LocalProgram.locate("python3") else {
            return .unavailable("cannot run the check on the platform: python3 is not installed on the platform's machine")
        }
        do {
            // The input holds the checks' passwords: it travels on standard input.
            let answer = try await LocalProgram.run(
                python, ["-c", Self.bootstrap],
                environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "LC_ALL": "C.UTF-8"],
                input: Data(input),
                timeout: timeout)
            guard answer.status == 0 else {
                return .unavailable("the checker failed on the platform: \(Self.lastLine(answer.errorOutput))")
            }
            return try Self.decode(answer.output)
        } catch is LocalProgram.TimedOut {
            return .unavailable("cannot run the check on the platform: the checker did not finish within \(timeout)")
        } catch {
            return .unavailable("cannot run the check on the platform: \(FlotillaError.describe(error))")
        }
    }

    private static func decode(_ output: String) throws -> OriginOutcome {
        let parsed = try JSONDecoder().decode(CheckerOutput.self, from: Data(output.utf8))
        return .answered(Dictionary(parsed.results.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first }))
    }

    private static func lastLine(_ text: String) -> String {
        String((text.split(whereSeparator: \.isNewline).last ?? "no output").prefix(300))
    }

    // MARK: - Processes on the dependency VMs

    /// Whether the service's process runs on its VM, and whether it is a stand-in.
    struct ProcessState: Sendable, Equatable {
        var running: [String: Bool]
        var standIns: Set<String>
    }

    private func inspect(_ vms: [VM], probes: [Probe], timeout: Duration) async -> [String: ProcessState] {
        await withTaskGroup(of: (String, ProcessState?).self) { group in
            for vm in vms {
                let key = vm.id?.uuidString ?? vm.hostName
                let names = Array(Set(probes.filter { $0.vmKey == key }.flatMap(\.processNames))).sorted()
                guard !names.isEmpty else { continue }
                group.addTask {
                    do {
                        let target = try await login.target(for: vm, user: vm.$role.value?.sshUser ?? "root")
                        let result = try await Self.first(within: timeout) {
                            try await shell.run(
                                Command.script(
                                    #"for name in "$@"; do if pgrep -x -- "$name" >/dev/null; then s=up; else s=down; fi; if [ -e "/run/flotilla-stand-ins/$name" ]; then k=stand-in; else k=real; fi; echo "$s $k $name"; done"#,
                                    arguments: names), on: target, timeout: timeout)
                        }
                        return (key, Self.processState(result.output))
                    } catch {
                        return (key, nil)
                    }
                }
            }
            var states: [String: ProcessState] = [:]
            for await (key, state) in group { if let state { states[key] = state } }
            return states
        }
    }

    static func processState(_ output: String) -> ProcessState {
        var state = ProcessState(running: [:], standIns: [])
        for line in output.split(separator: "\n") {
            let words = line.split(separator: " ", maxSplits: 2).map(String.init)
            guard words.count == 3 else { continue }
            state.running[words[2]] = words[0] == "up"
            if words[1] == "stand-in" { state.standIns.insert(words[2]) }
        }
        return state
    }

    // MARK: - One result

    static func result(
        of probe: Probe, from origin: Origin, outcome: OriginOutcome, processes: ProcessState?
    ) -> DependencyCheckReport.Result {
        let originName: String
        let originID: UUID?
        switch origin {
        case .platform: (originName, originID) = (platformOrigin, nil)
        case .target(let vm): (originName, originID) = (vm.hostName, vm.id)
        }
        let runningNames = probe.processNames.filter { processes?.running[$0] == true }
        let isStandIn = runningNames.contains { processes?.standIns.contains($0) == true }
        let notRunning = processes != nil && !probe.processNames.isEmpty && runningNames.isEmpty
        let method: DependencyCheckReport.Method = probe.check.kind == .tcp ? .port : isStandIn ? .processAndPort : .protocol
        var result = DependencyCheckReport.Result(
            role: probe.role, vmID: probe.vm.id ?? UUID(), vm: probe.vm.hostName, address: probe.vm.ip, port: probe.port,
            service: probe.check.kind.rawValue, origin: originName, originVMID: originID, method: method,
            methodDescription: describe(method, kind: probe.check.kind, process: runningNames.first), passed: false, layer: nil,
            message: "", milliseconds: 0)
        guard case .answered(let answers) = outcome, let answer = answers[probe.id] else {
            if case .unavailable(let reason) = outcome { result.message = reason } else { result.message = "the checker gave no answer" }
            result.layer = .originUnavailable
            return result
        }
        result.milliseconds = answer.milliseconds
        let stopped = "\(probe.processNames.joined(separator: " / ")) is not running on \(probe.vm.hostName)"
        if isStandIn {
            // A stand-in accepts and closes connections: its process and an open port are all there is to see.
            result.passed = answer.connected
            result.layer = answer.connected ? nil : layer(answer.layer)
            result.message =
                answer.connected
                ? "stand-in \(runningNames[0]) runs on \(probe.vm.hostName) and port \(probe.port) accepts connections"
                : answer.message
            return result
        }
        result.passed = answer.passed
        result.message = answer.message
        if !answer.passed {
            let reachedHost = answer.connected || answer.layer == "port_closed"
            result.layer = notRunning && reachedHost ? .serviceNotRunning : layer(answer.layer)
            if result.layer == .serviceNotRunning { result.message = "\(stopped); \(answer.message)" }
        }
        return result
    }

    /// Role, service, port, then origin with the platform first.
    private static func order(_ result: DependencyCheckReport.Result) -> (String, String, Int, String) {
        (result.role, result.service, result.port, result.origin == platformOrigin ? "" : result.origin)
    }

    static func layer(_ name: String?) -> DependencyCheckReport.Layer {
        switch name {
        case "no_route": .noRoute
        case "port_closed": .portClosed
        case "authentication": .authentication
        case "timeout": .timeout
        default: .protocolError
        }
    }

    static func describe(_ method: DependencyCheckReport.Method, kind: ServiceProfile.Check.Kind, process: String?) -> String {
        switch method {
        case .port: return "port accepts connections"
        case .processAndPort: return "stand-in: process \(process ?? kind.rawValue) running and port open"
        case .protocol:
            switch kind {
            case .redis: return "Redis PING"
            case .mysql: return "MySQL/MariaDB handshake, login and SELECT 1"
            case .rabbitmq: return "AMQP 0-9-1 connection open"
            case .mongo: return "MongoDB ping"
            case .nfs: return "NFS export listed by mountd"
            case .tcp: return "port accepts connections"
            }
        }
    }

    static func describe(_ layer: DependencyCheckReport.Layer?) -> String {
        switch layer {
        case .noRoute: "no route"
        case .portClosed: "port closed"
        case .serviceNotRunning: "service not running"
        case .authentication: "authentication"
        case .protocolError: "protocol"
        case .timeout: "timeout"
        case .originUnavailable: "check could not run there"
        case nil: "passed"
        }
    }

    private static func uniqueVMs(_ vms: [VM]) -> [VM] {
        var seen = Set<String>()
        return vms.filter { seen.insert($0.id?.uuidString ?? $0.hostName).inserted }
    }

    /// The operation's value, or a timeout error once `limit` passed; the operation is left to
    /// finish on its own (an SSH connect does not always stop at cancellation).
    static func first<T: Sendable>(within limit: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let pending = NIOLockedValueBox<CheckedContinuation<T, any Error>?>(nil)
        return try await withCheckedThrowingContinuation { continuation in
            pending.withLockedValue { $0 = continuation }
            let work = Task {
                let outcome: Result<T, any Error>
                do { outcome = .success(try await operation()) } catch { outcome = .failure(error) }
                pending.withLockedValue { waiting in
                    waiting?.resume(with: outcome)
                    waiting = nil
                }
            }
            Task {
                try? await Task.sleep(for: limit)
                pending.withLockedValue { waiting in
                    waiting?.resume(throwing: FlotillaError(.unavailable, "no answer within \(limit)"))
                    waiting = nil
                }
                work.cancel()
            }
        }
    }
}

extension DependencyChecks {
    /// The checker program beside the views (`Resources/ServiceChecks/servicecheck.py`).
    static func checkerPath(viewsDirectory: String) -> String {
        URL(fileURLWithPath: viewsDirectory).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Resources/ServiceChecks/servicecheck.py").path
    }
}

extension Request {
    var dependencyChecks: DependencyChecks {
        let flotilla = application.flotilla
        return DependencyChecks(
            shell: flotilla.shell, login: GuestLogin(keys: PlatformKeys(database: db, secrets: flotilla.secrets)),
            checkerPath: DependencyChecks.checkerPath(viewsDirectory: application.directory.viewsDirectory))
    }
}
