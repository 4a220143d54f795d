import Logging
import NIOCore
import NIOPosix

/// The outcome of a command on one host of a fan-out.
public struct HostResult: Sendable {
    public var target: SSHTarget
    public var result: Result<CommandResult, RemoteShellError>

    /// The exit status, when the command ran to completion.
    public var exitStatus: Int? { try? result.get().exitStatus }
    /// Whether the command ran and exited with status 0.
    public var succeeded: Bool { (try? result.get().succeeded) ?? false }
    /// The stage that failed (`.connect`, `.authentication`, `.timeout`, ...) when the command could not run.
    public var failure: RemoteShellError? {
        if case .failure(let error) = result { return error }
        return nil
    }
}

/// Keeps one SSH connection per host, port and user, and reuses it for every command there.
///
/// Connections open on first use; a closed one is replaced on the next use; connections idle
/// for `idleTimeout` are closed. Handshakes to the same host are limited so that sshd's
/// MaxStartups does not drop them under fan-out. A connection is authenticated with the
/// credential of the target that opened it; later targets with the same ID share it, unless a
/// target expects another host key than the connection's (`HostKeyCheck.expected`): then the
/// pooled connection is closed and a new one checks the key. Call `shutdown()` when done.
public actor ShellPool {
    private enum Entry {
        case connecting(Task<SSHConnection, any Error>)
        case ready(SSHConnection)
    }

    private let hostKeyStore: any HostKeyStore
    private let options: SSHConnectionOptions
    private let maxHandshakesPerHost: Int
    private let idleTimeout: Duration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger

    private var entries: [SSHTarget.ID: Entry] = [:]
    private var commandsInFlight: [SSHTarget.ID: Int] = [:]
    private var lastUsed: [SSHTarget.ID: ContinuousClock.Instant] = [:]
    private var handshakePermits: [String: AsyncSemaphore] = [:]
    private var idleReaper: Task<Void, Never>?

    public init(
        hostKeyStore: any HostKeyStore,
        options: SSHConnectionOptions = SSHConnectionOptions(),
        maxHandshakesPerHost: Int = 2,
        idleTimeout: Duration = .seconds(60),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "RemoteShell")
    ) {
        self.hostKeyStore = hostKeyStore
        self.options = options
        self.maxHandshakesPerHost = max(1, maxHandshakesPerHost)
        self.idleTimeout = idleTimeout
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    /// Runs `command` on `target` over the pooled connection. See `SSHConnection.run`.
    public func run(
        _ command: Command, on target: SSHTarget, standardInput: [UInt8] = [], timeout: Duration? = nil
    ) async throws -> CommandResult {
        try await withConnection(to: target) { try await $0.run(command, standardInput: standardInput, timeout: timeout) }
    }

    /// Writes a file on `target` over the pooled connection. See `SSHConnection.upload`.
    public func upload(
        _ contents: [UInt8], to path: String, on target: SSHTarget, mode: Int? = nil, owner: String? = nil, timeout: Duration = .seconds(60)
    ) async throws {
        try await withConnection(to: target) { try await $0.upload(contents, to: path, mode: mode, owner: owner, timeout: timeout) }
    }

    /// Runs `command` on every target, at most `concurrency` hosts at a time, and reports each
    /// host's outcome in the order of `targets`. Never throws: failures are per-host results.
    public func fanOut(to targets: [SSHTarget], command: Command, concurrency: Int = 50, timeout: Duration? = nil) async -> [HostResult] {
        await withTaskGroup(of: (Int, Result<CommandResult, RemoteShellError>).self) { group in
            var results = [Result<CommandResult, RemoteShellError>?](repeating: nil, count: targets.count)
            var next = 0
            func startNext() {
                guard next < targets.count else { return }
                let index = next
                let target = targets[index]
                next += 1
                group.addTask {
                    do {
                        return (index, .success(try await self.run(command, on: target, timeout: timeout)))
                    } catch let error as RemoteShellError {
                        return (index, .failure(error))
                    } catch {
                        return (index, .failure(RemoteShellError(.connectionClosed, host: target.hostKeyName, message: "\(error)")))
                    }
                }
            }
            for _ in 0..<max(1, concurrency) { startNext() }
            for await (index, result) in group {
                results[index] = result
                startNext()
            }
            return zip(targets, results).map { target, result in
                HostResult(
                    target: target,
                    result: result ?? .failure(RemoteShellError(.connectionClosed, host: target.hostKeyName, message: "not run"))
                )
            }
        }
    }

    /// The pooled connection to `target`, opened if there is none or the previous one closed.
    public func connection(to target: SSHTarget) async throws -> SSHConnection {
        let id = target.id
        switch entries[id] {
        case .ready(let connection) where connection.isActive:
            if Self.hostKey(connection.hostKey, satisfies: target.hostKeyCheck) { return connection }
            await discard(id, connection)
        case .connecting(let task):
            let connection = try await task.value
            if Self.hostKey(connection.hostKey, satisfies: target.hostKeyCheck) { return connection }
            if case .ready(let pooled) = entries[id], pooled === connection { await discard(id, connection) }
        case .ready, nil:
            break
        }
        let permits = handshakePermits(for: target.host)
        let (hostKeyStore, options, eventLoopGroup, logger) = (hostKeyStore, options, eventLoopGroup, logger)
        let task = Task {
            try await permits.withPermit {
                try await SSHConnection.connect(
                    to: target, hostKeyStore: hostKeyStore, options: options, eventLoopGroup: eventLoopGroup, logger: logger)
            }
        }
        entries[id] = .connecting(task)
        startIdleReaperIfNeeded()
        do {
            let connection = try await task.value
            entries[id] = .ready(connection)
            lastUsed[id] = .now
            return connection
        } catch {
            entries[id] = nil
            throw error
        }
    }

    /// Whether a connection that accepted `hostKey` may serve a target with `check`.
    private static func hostKey(_ hostKey: SSHHostKey, satisfies check: HostKeyCheck) -> Bool {
        if case .expected(let expected) = check { return expected == hostKey }
        return true
    }

    /// Drops a pooled connection whose host key another target does not accept.
    private func discard(_ id: SSHTarget.ID, _ connection: SSHConnection) async {
        entries[id] = nil
        lastUsed[id] = nil
        logger.debug("pooled connection has another host key than expected; reconnecting", metadata: ["target": "\(connection.target)"])
        await connection.close()
    }

    /// Closes connections that have run nothing for `idleTimeout`.
    public func closeIdleConnections() async {
        let cutoff = ContinuousClock.now - idleTimeout
        for (id, entry) in entries {
            guard case .ready(let connection) = entry, commandsInFlight[id, default: 0] == 0,
                !connection.isActive || lastUsed[id, default: cutoff] <= cutoff
            else { continue }
            entries[id] = nil
            lastUsed[id] = nil
            await connection.close()
        }
    }

    /// Closes the pooled connections to `host` (any port and user), for when the machine at that
    /// address is replaced; the next command there connects afresh.
    public func closeConnections(toHost host: String) async {
        for (id, entry) in entries where id.host == host {
            guard case .ready(let connection) = entry else { continue }
            entries[id] = nil
            lastUsed[id] = nil
            await connection.close()
        }
    }

    /// Closes every connection and stops the idle timer.
    public func shutdown() async {
        idleReaper?.cancel()
        idleReaper = nil
        let current = entries
        entries = [:]
        for entry in current.values {
            switch entry {
            case .ready(let connection): await connection.close()
            case .connecting(let task): if let connection = try? await task.value { await connection.close() }
            }
        }
    }

    private func withConnection<T: Sendable>(to target: SSHTarget, _ body: @Sendable (SSHConnection) async throws -> T) async throws -> T {
        let connection = try await connection(to: target)
        let id = target.id
        commandsInFlight[id, default: 0] += 1
        defer {
            commandsInFlight[id, default: 1] -= 1
            lastUsed[id] = .now
        }
        return try await body(connection)
    }

    private func handshakePermits(for host: String) -> AsyncSemaphore {
        if let permits = handshakePermits[host] { return permits }
        let permits = AsyncSemaphore(limit: maxHandshakesPerHost)
        handshakePermits[host] = permits
        return permits
    }

    private func startIdleReaperIfNeeded() {
        guard idleReaper == nil else { return }
        let interval = idleTimeout / 2
        idleReaper = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let self else { return }
                await self.closeIdleConnections()
            }
        }
    }
}
