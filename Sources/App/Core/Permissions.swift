import Vapor

/// The two roles of SPEC USR-6.
public enum UserRole: String, Codable, CaseIterable, Sendable {
    /// May do everything.
    case system
    /// May view, power, change VM networks, read and back up logs, and change their own password.
    case ordinary

    /// Reads a role from a form, the API or the command line; anything else is a validation error.
    init(parsing text: String?) throws {
        guard let text, let role = UserRole(rawValue: text) else {
            throw FlotillaError.validation("role must be \"system\" or \"ordinary\"")
        }
        self = role
    }

    public var title: String {
        switch self {
        case .system: "System administrator"
        case .ordinary: "Ordinary administrator"
        }
    }
}

/// Every action a request can perform. Each route names exactly one; a route without
/// one is refused (see `PermissionGuard`), so nothing is reachable by accident.
public enum Action: String, CaseIterable, Sendable {
    case signIn
    case readAPIDocument
    case signOut
    case viewDashboard
    case viewEnvironments
    case addEnvironment
    case editEnvironment
    case deleteEnvironment
    case viewVMs
    case addVM
    case deleteVM
    case powerVM
    /// Edit a VM's notes (SPEC VM-14); not among USR-6's ordinary rights.
    case editVMNotes
    case changeVMPassword
    case changeVMNetwork
    case viewUpgrades
    case upgradeVM
    /// Add or delete upgrade hooks (their secrets open auto-upgrade to a repository's senders).
    case manageUpgradeHooks
    case viewServiceConfiguration
    case configureServices
    case viewJobs
    case cancelJob
    case viewLogs
    case deleteLogs
    case backupLogs
    case viewUsers
    case addUser
    case editUser
    case deleteUser
    case changeOwnPassword
    case manageOwnTokens
    /// List and revoke any user's API tokens.
    case manageUserTokens
    case viewSettings
    case changeSettings
    /// Make a new platform SSH key and move every VM to it.
    case rotateSSHKeys
    /// See webhooks, the notification settings and the delivery log.
    case viewNotifications
    /// Add and delete webhooks, send test notifications, change the rate limit.
    case manageNotifications
    /// See the Flotilla instances sharing the database, their heartbeats and work.
    case viewInstances
    /// The load balancer's health check: whether this instance reaches the database.
    case checkHealth
    /// A VM's CPU and memory history (its charts).
    case viewVMMetrics
    /// Prometheus' scrape of `/metrics`; the route checks its own token (`FLOTILLA_METRICS_TOKEN`).
    case scrapePlatformMetrics
    /// A monitor agent's heartbeat or events; the route checks the VM's agent credential and signature.
    case reportAgentStatus
    /// A commit from an SVN post-commit hook or a Git server's push webhook; unauthenticated by
    /// design, the route checks the hook's own token or signature (`HookDelivery.verify`).
    case receiveUpgradeHook
    /// Start, stop or restart a VM's watched services (SPEC VM-13; not among USR-6's ordinary rights).
    case controlVMServices

    /// Who may perform an action.
    public enum Rule: Sendable, Equatable {
        /// Anyone, signed in or not.
        case anyone
        /// Signed-in users with one of these roles.
        case roles(Set<UserRole>)
    }

    /// The permission table of SPEC USR-6: the one place that says who may do what.
    public var rule: Rule {
        let everyone: Rule = .roles([.system, .ordinary])
        let systemOnly: Rule = .roles([.system])
        switch self {
        case .signIn, .readAPIDocument, .checkHealth, .scrapePlatformMetrics, .reportAgentStatus, .receiveUpgradeHook:
            return .anyone
        case .signOut, .viewDashboard, .viewEnvironments, .viewVMs, .powerVM, .changeVMNetwork,
            .viewJobs, .viewLogs, .backupLogs, .viewUsers, .changeOwnPassword, .manageOwnTokens, .viewVMMetrics:
            return everyone
        case .addEnvironment, .editEnvironment, .deleteEnvironment, .addVM, .deleteVM, .editVMNotes, .changeVMPassword,
            .viewUpgrades, .upgradeVM, .manageUpgradeHooks, .viewServiceConfiguration, .configureServices, .cancelJob,
            .deleteLogs, .addUser, .editUser, .deleteUser, .manageUserTokens, .viewSettings, .changeSettings,
            .rotateSSHKeys, .viewInstances, .viewNotifications, .manageNotifications, .controlVMServices:
            return systemOnly
        }
    }

    public func isAllowed(for role: UserRole?) -> Bool {
        switch rule {
        case .anyone: true
        case .roles(let roles): role.map(roles.contains) ?? false
        }
    }
}

private struct RequiredActionKey: Hashable, Sendable {}

extension Route {
    /// Records the action this route performs; `PermissionGuard` enforces it.
    @discardableResult
    public func requires(_ action: Action) -> Route {
        userInfo[AnySendableHashable(RequiredActionKey())] = action
        return self
    }

    public var requiredAction: Action? {
        userInfo[AnySendableHashable(RequiredActionKey())] as? Action
    }
}
