import Foundation

/// The lab's repository servers on the bridge (lab/lab-repos.sh): Debian's `git daemon` and
/// `svnserve`, each with a repository `web` holding the sample web application
/// (lab/sample-web) that the `web` role deploys. Started by `LabSupervisor.start()`, stopped by
/// `Lab.down`; the repositories live in the lab's state directory.
public struct LabRepositories: Sendable {
    public let configuration: LabConfiguration

    public init(configuration: LabConfiguration) {
        self.configuration = configuration
    }

    /// The sample application's Git repository (branch `main`; pushes allowed).
    public var gitURL: String { "git://\(configuration.gateway)/web.git" }
    /// The sample application's SVN trunk (user `lab`, password `lab` may commit).
    public var svnURL: String { "svn://\(configuration.gateway)/web/trunk" }
    /// The bare Git repository on the machine, where a `post-receive` hook goes.
    public var gitDirectory: String { configuration.stateDirectory + "/repos/git/web.git" }
    /// The SVN repository on the machine, where a `post-commit` hook goes.
    public var svnDirectory: String { configuration.stateDirectory + "/repos/svn/web" }

    /// Creates the repositories once and starts both servers (if not running) on the bridge's address.
    public func start() async throws {
        try await HostCommand.check(script, ["up", configuration.stateDirectory, "\(configuration.gateway)"])
    }

    public func stop() async throws {
        try await HostCommand.check(script, ["down", configuration.stateDirectory])
    }

    private var script: String { configuration.scriptsDirectory + "/lab-repos.sh" }
}
