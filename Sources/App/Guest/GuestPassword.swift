import RemoteShell
import VSphere

/// Changing a user's password inside a guest (SPEC VM-9), over the platform's key login.
struct GuestPassword {
    let shell: any GuestShell

    /// Sets the password as a SHA-512 crypt hash (`chpasswd -e`, as root), so the password
    /// itself never travels, then proves it by reading the user's shadow entry back. The
    /// platform never logs in with the password. Throws when either step fails; the caller
    /// stores the password only after.
    func change(user: String, to newPassword: String, on target: SSHTarget, hostName: String, context: StepContext) async throws {
        await context.log("setting the password of \(user) on \(hostName)")
        let hash = CryptSHA512.hash(password: newPassword)
        let result = try await shell.run(
            Command("chpasswd", "-e").asRoot(loggedInAs: target.user), on: target,
            standardInput: Array("\(user):\(hash)\n".utf8), timeout: .seconds(30))
        guard result.succeeded else {
            throw FlotillaError(.unavailable, "chpasswd failed on \(hostName): \(result.errorOutput.prefix(200))")
        }
        let shadow = try await shell.run(
            Command("getent", "shadow", user).asRoot(loggedInAs: target.user), on: target,
            timeout: .seconds(20))
        let stored = shadow.output.split(separator: ":", omittingEmptySubsequences: false).dropFirst().first.map(String.init)
        guard shadow.succeeded, stored == hash else {
            throw FlotillaError(.unavailable, "the new password of \(user) did not reach the guest's shadow file on \(hostName)")
        }
        await context.log("the new password is set")
    }
}
