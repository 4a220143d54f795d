import RemoteShell

/// Changing a user's password inside a guest (SPEC VM-9).
struct GuestPassword {
    let shell: any GuestShell

    /// Sets the password with `chpasswd` over the current login, then proves it by logging in
    /// with the new one. Throws when either step fails; the caller stores the password only after.
    func change(user: String, to newPassword: String, on current: SSHTarget, hostName: String, context: StepContext) async throws {
        await context.log("setting the password of \(user) on \(hostName)")
        let result = try await shell.run(Command("chpasswd"), on: current, standardInput: Array("\(user):\(newPassword)\n".utf8),
                                         timeout: .seconds(30))
        guard result.succeeded else {
            throw FlotillaError(.unavailable, "chpasswd failed on \(hostName): \(result.errorOutput.prefix(200))")
        }
        await shell.closeConnections(toHost: current.host)
        let proof = try await shell.run(Command("true"), on: SSHTarget(host: current.host, port: current.port, user: user,
                                                                        authentication: .password(newPassword)),
                                         timeout: .seconds(20))
        guard proof.succeeded else { throw FlotillaError(.unavailable, "the new password does not log in on \(hostName)") }
        await context.log("the new password logs in")
    }
}
