import RemoteShell

/// Putting the platform key on a guest Flotilla did not make (SPEC BEY-4, BEY-9): the one time
/// the platform logs in with a VM's password.
struct GuestEnrollment {
    let shell: any GuestShell
    let keys: PlatformKeys

    /// Logs in once with the password, taking the host key it presents (pinned by the caller),
    /// adds `key` to the user's `authorized_keys`, and proves that the key logs in to the same
    /// host key. Returns that host key.
    func enroll(address: String, user: String, password: String, key: PlatformSSHKey, hostName: String) async throws -> SSHHostKey {
        await shell.closeConnections(toHost: address)
        let byPassword = SSHTarget(host: address, user: user, authentication: .password(password), hostKeyCheck: .firstContact)
        let hostKey = try await shell.hostKey(of: byPassword)
        let added = try await shell.run(GuestAuthorizedKeys.add(key.publicKey), on: byPassword, timeout: .seconds(20))
        guard added.succeeded else {
            throw FlotillaError(.unavailable, "could not install the platform key on \(hostName): \(added.errorOutput.prefix(200))")
        }
        // The next login must be a new one, by key.
        await shell.closeConnections(toHost: address)
        let byKey = SSHTarget(
            host: address, user: user, authentication: .privateKey(try keys.privateKey(key)),
            hostKeyCheck: .expected(hostKey))
        let proof = try await shell.run(Command("true"), on: byKey, timeout: .seconds(20))
        guard proof.succeeded else { throw FlotillaError(.unavailable, "the platform key does not log in on \(hostName)") }
        return hostKey
    }
}
