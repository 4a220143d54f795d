import RemoteShell

/// Whether a new guest is ready for work: its SSH server answers, with the expected password,
/// as the expected host.
struct GuestReadiness {
    let shell: any GuestShell

    /// Tools report the address before the guest's SSH server is up (or before its new
    /// password is set): keep trying until `timeout`, then report the last reason. A host key
    /// that does not match is never retried.
    func waitForLogin(_ target: SSHTarget, hostName: String, timeout: Duration, context: StepContext) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastFailure = "no answer"
        while ContinuousClock.now < deadline {
            do {
                let answer = try await shell.run(Command("hostname"), on: target, timeout: .seconds(20))
                let name = answer.output.trimmingCharacters(in: .whitespacesAndNewlines)
                guard answer.succeeded, name == hostName else {
                    throw FlotillaError(.unavailable, "the guest at \(target.host) answered SSH as '\(name.prefix(64))', not \(hostName)")
                }
                await context.log("SSH answers on \(target.host) with the new password")
                return
            } catch let error as RemoteShellError where error.kind != .hostKeyMismatch {
                lastFailure = error.description
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        throw FlotillaError(.unavailable, "SSH on \(target.host) did not answer with the new password within \(timeout): \(lastFailure)")
    }
}
