import RemoteShell

/// Whether a new guest is ready for work: its SSH server lets the platform key in, as the
/// expected host.
struct GuestReadiness {
    let shell: any GuestShell

    /// Tools report the address before the guest's SSH server is up (or before it has installed
    /// the platform key): keep trying until `timeout`, then report the last reason. A host key
    /// that does not match is never retried. Returns the host key the guest presented.
    func waitForLogin(_ target: SSHTarget, hostName: String, timeout: Duration, context: StepContext) async throws -> SSHHostKey {
        let deadline = ContinuousClock.now + timeout
        var lastFailure = "no answer"
        while ContinuousClock.now < deadline {
            do {
                let answer = try await shell.run(Command("hostname"), on: target, timeout: .seconds(20))
                let name = answer.output.trimmingCharacters(in: .whitespacesAndNewlines)
                guard answer.succeeded, name == hostName else {
                    throw FlotillaError(.unavailable, "the guest at \(target.host) answered SSH as '\(name.prefix(64))', not \(hostName)")
                }
                let hostKey = try await shell.hostKey(of: target)
                await context.log("SSH answers on \(target.host) to the platform key")
                return hostKey
            } catch let error as RemoteShellError where error.kind != .hostKeyMismatch {
                lastFailure = error.description
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        throw FlotillaError(.unavailable, "SSH on \(target.host) did not let the platform key in within \(timeout): \(lastFailure)")
    }
}
