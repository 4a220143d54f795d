/// Simulated guests for the VMs of a vSphere simulator: each powered-on VM with network
/// metadata becomes a set of Linux namespaces with its own address, processes, host name,
/// writable root and sshd. `LabSupervisor` makes and follows them; `Lab.down` removes them.
public enum Lab {
    /// Removes everything the lab made: every `flt-*` network namespace with its processes,
    /// every `flt-*` link (the veth pairs and the bridge `flt-br0`), the vcsim the lab started,
    /// and the state directory with the guests' files. Mounts live in the guests' own mount
    /// namespaces and go with their processes. Nothing else is touched.
    public static func down(_ configuration: LabConfiguration = LabConfiguration()) async throws {
        await VcsimProcess.stopRecorded(stateDirectory: configuration.stateDirectory)
        // The repository servers' pid files live in the state directory that `down` removes.
        try? await LabRepositories(configuration: configuration).stop()
        try await HostPlumbing(configuration: configuration).down()
    }

    /// Runs `body` with `configuration`'s lab up and followed, for tests and scripts that need
    /// one for a while: starts it on a clean machine (an earlier lab is taken down first),
    /// follows the inventory while `body` runs, then stops following, closes the supervisor and
    /// takes the lab down — also when `body` throws, so a failed run never leaves guests
    /// behind for the next one. The lab must launch its own vcsim, which `body` receives.
    public static func withRunning<Value: Sendable>(
        _ configuration: LabConfiguration, _ body: (VcsimProcess) async throws -> Value
    ) async throws -> Value {
        let missing = missingPrerequisites(configuration)
        guard missing.isEmpty else { throw LabError.missingPrerequisite(missing.joined(separator: "; ")) }
        try await down(configuration)
        let supervisor = LabSupervisor(configuration: configuration)
        let following: Task<Void, Never>
        do {
            try await supervisor.start()
            following = Task { await supervisor.follow() }
        } catch {
            await supervisor.close()
            try? await down(configuration)
            throw error
        }
        let outcome: Result<Value, any Error>
        do {
            guard let vcsim = await supervisor.vcsim else { throw LabError.vcsimDidNotStart("the lab launched no vcsim") }
            outcome = .success(try await body(vcsim))
        } catch {
            outcome = .failure(error)
        }
        following.cancel()
        await following.value
        await supervisor.close()
        switch outcome {
        case .success(let value):
            try await down(configuration)
            return value
        case .failure(let error):
            try? await down(configuration)
            throw error
        }
    }
}
