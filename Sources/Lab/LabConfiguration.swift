import Foundation
import VSphere

/// Everything `flotilla lab up` can set. The defaults make a lab that works from a checkout of
/// the repository, run as root.
public struct LabConfiguration: Sendable {
    /// The only addresses guests may have; the bridge takes the first one as the guests' gateway.
    /// Nothing in it is routed beyond the machine.
    public var network: IPv4Network
    /// Where guests keep their writable layers and the lab its records; removed by `Lab.down`.
    public var stateDirectory: String
    /// The repository's `lab/` directory (guest-init.sh, lab-host.sh, stand-in.py).
    public var scriptsDirectory: String
    /// How vcsim is reached: started by the supervisor, or one already running.
    public var vcsim: VcsimEndpoint
    /// Roles that get a template `tpl-<role>` in a vcsim the supervisor starts, and among which
    /// pre-created VMs are spread.
    public var roles: [String]
    /// VMs cloned and powered on at start-up (`--vms N`), named `lab-<role>-<n>`.
    public var preCreatedVMs: Int
    /// Root's password on pre-created VMs.
    public var demoPassword: String
    /// How often the supervisor reads vcsim's VMs.
    public var pollInterval: Duration

    public init(
        network: IPv4Network = Self.defaultNetwork,
        stateDirectory: String = "/var/lib/flotilla-lab",
        scriptsDirectory: String = Self.repositoryDirectory + "/lab",
        vcsim: VcsimEndpoint = .launch(VcsimLaunch()),
        roles: [String] = Self.defaultRoles,
        preCreatedVMs: Int = 0,
        demoPassword: String = "flotilla",
        pollInterval: Duration = .milliseconds(500)
    ) {
        self.network = network
        self.stateDirectory = stateDirectory
        self.scriptsDirectory = scriptsDirectory
        self.vcsim = vcsim
        self.roles = roles
        self.preCreatedVMs = preCreatedVMs
        self.demoPassword = demoPassword
        self.pollInterval = pollInterval
    }

    public static let defaultNetwork = IPv4Network("10.77.0.0/16")!

    public static let defaultRoles = [
        "web", "spider", "mysql", "mongo", "redis", "rabbitmq", "nfs", "reportservice", "celery", "daemon",
    ]

    /// The checkout this library was built from (Sources/Lab/ is two levels below it).
    public static var repositoryDirectory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// The bridge's address, which guests use as their gateway.
    public var gateway: IPv4Address { network.firstHost }

    /// One directory per guest (`vm-42/`): its seed, its overlay's upper layer (the guest's own
    /// files, such as `upper/var/log/sshd.log`) and its console log.
    public var guestsDirectory: String { stateDirectory + "/guests" }
}

/// Where the supervisor finds vcsim.
public enum VcsimEndpoint: Sendable {
    /// Start the project's vcsim launcher and stop it when the supervisor stops.
    case launch(VcsimLaunch)
    /// Use a vcsim (or vCenter) that is already running; `thumbprint` pins its certificate.
    case existing(url: String, username: String, password: String, thumbprint: String?)
}

/// How the supervisor starts the project's vcsim launcher (lab/vcsim, built by `scripts/vcsim build`).
public struct VcsimLaunch: Sendable {
    public var executable: String
    public var listen: String
    public var username: String
    public var password: String
    /// Plain VMs vcsim creates besides the templates; they carry no guest metadata.
    public var plainVMs: Int
    /// More launcher flags, e.g. fault injection (`-fail-prefix bad- -fail-fault NoDiskSpace`).
    public var extraArguments: [String]

    public init(
        executable: String = LabConfiguration.repositoryDirectory + "/.tools/vcsim",
        listen: String = "127.0.0.1:0",
        username: String = "lab",
        password: String = "lab",
        plainVMs: Int = 0,
        extraArguments: [String] = []
    ) {
        self.executable = executable
        self.listen = listen
        self.username = username
        self.password = password
        self.plainVMs = plainVMs
        self.extraArguments = extraArguments
    }
}
