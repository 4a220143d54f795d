import RemoteShell

/// The App's one way into a guest: run a command, learn its host key, drop cached connections.
/// `ShellPoolGuestShell` (over `RemoteShell.ShellPool`) is the implementation; tests pass an
/// in-memory one to `configure(_:config:outside:)`.
protocol GuestShell: Sendable {
    func run(_ command: Command, on target: SSHTarget, standardInput: [UInt8], timeout: Duration?) async throws -> CommandResult
    /// The host key the guest presented and `target.hostKeyCheck` accepted (logging in if needed).
    func hostKey(of target: SSHTarget) async throws -> SSHHostKey
    /// Forgets pooled connections to `host`, e.g. after its password or address changed.
    func closeConnections(toHost host: String) async
    /// Closes everything (at shutdown).
    func shutdown() async
}

extension GuestShell {
    func run(_ command: Command, on target: SSHTarget, timeout: Duration? = nil) async throws -> CommandResult {
        try await run(command, on: target, standardInput: [], timeout: timeout)
    }
}

/// The live `GuestShell`: SSH through RemoteShell's connection pool.
struct ShellPoolGuestShell: GuestShell {
    let pool: ShellPool

    func run(_ command: Command, on target: SSHTarget, standardInput: [UInt8], timeout: Duration?) async throws -> CommandResult {
        try await pool.run(command, on: target, standardInput: standardInput, timeout: timeout)
    }

    func hostKey(of target: SSHTarget) async throws -> SSHHostKey {
        try await pool.connection(to: target).hostKey
    }

    func closeConnections(toHost host: String) async {
        await pool.closeConnections(toHost: host)
    }

    func shutdown() async {
        await pool.shutdown()
    }
}
