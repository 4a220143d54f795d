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
}
