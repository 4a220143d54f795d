import Vapor

/// Every page of the web UI: routes are registered from these and links are built from them,
/// so a path is written once.
enum SiteURL: Sendable {
    case dashboard
    case dashboardEvents
    case vmsPower
    case vm(id: UUID?)
    case vmNotes(id: UUID?)
    case search
    case signIn
    case signOut
    case environments
    case environmentsNew
    case blueprints
    case blueprintsCheck
    case environmentClone(id: UUID?)
    case environmentsBatch
    case environmentsBatchDelete
    case environment(id: UUID?)
    case environmentVMs(id: UUID?)
    case adopt
    case vmPower(id: UUID?)
    case vmDelete(id: UUID?)
    case vmPassword(id: UUID?)
    case vmNetwork(id: UUID?)
    case job(id: UUID?)
    case jobCancel(id: UUID?)
    case settingsConnections
    case settingsConnectionTest
    case settingsConnectionDelete(id: UUID?)
    case settingsRoles
    case settingsRoleMonitor(id: UUID?)
    case settingsRoleMonitorDelete(id: UUID?)
    case settingsSSHKeys
    case settingsSSHKeysRotate
    case notifications
    case notificationsSettings
    case notificationsTestMail
    case notificationsWebhooks
    case notificationsWebhookTest(id: UUID?)
    case notificationsWebhookDelete(id: UUID?)
    case notificationsDeliveries
    case settingsInstances
    case upgrades
    case upgradesStart
    case upgradesRollback
    case roleApplication(id: UUID?)
    case upgradeHooks
    case upgradeHookDelete(id: UUID?)
    case upgradeAutoUpgrade
    case serviceConfiguration
    case serviceProfiles
    case serviceProfile(id: UUID?)
    case serviceProfileExamples
    case configurationWizard
    case configurationRuns
    case configurationRun(id: UUID?)
    case configurationDrift
    case jobs
    case settings
    case logs
    case logsDelete
    case logsBackup
    case logBackups
    case logBackup(name: String?)
    case users
    case usersNew
    case user(id: UUID?)
    case userEdit(id: UUID?)
    case userDelete(id: UUID?)
    case userTokenRevoke(user: UUID?, token: UUID?)
    case account
    case accountPassword
    case accountTokens
    case accountTokenRevoke(id: UUID?)
    case stylesheet
    case script

    /// Route path components; parameters appear as `:name`.
    var pathComponents: [PathComponent] { segments }

    /// The concrete path of a link, with its parameters filled in.
    var relative: String {
        "/" + segments.map(\.description).joined(separator: "/")
    }

    private var segments: [PathComponent] {
        func value(_ id: UUID?, _ name: String) -> PathComponent {
            id.map { .constant($0.uuidString) } ?? .parameter(name)
        }
        switch self {
        case .dashboard: return []
        case .dashboardEvents: return ["dashboard", "events"]
        case .vmsPower: return ["vms", "power"]
        case .vm(let id): return ["vms", value(id, "id")]
        case .vmNotes(let id): return ["vms", value(id, "id"), "notes"]
        case .search: return ["search"]
        case .signIn: return ["login"]
        case .signOut: return ["logout"]
        case .environments: return ["environments"]
        case .environmentsNew: return ["environments", "new"]
        case .blueprints: return ["blueprints"]
        case .blueprintsCheck: return ["blueprints", "check"]
        case .environmentClone(let id): return ["environments", value(id, "id"), "clone"]
        case .environmentsBatch: return ["environments", "batch"]
        case .environmentsBatchDelete: return ["environments", "batch", "delete"]
        case .environment(let id): return ["environments", value(id, "id")]
        case .environmentVMs(let id): return ["environments", value(id, "id"), "vms"]
        case .adopt: return ["adopt"]
        case .vmPower(let id): return ["vms", value(id, "id"), "power"]
        case .vmDelete(let id): return ["vms", value(id, "id"), "delete"]
        case .vmPassword(let id): return ["vms", value(id, "id"), "password"]
        case .vmNetwork(let id): return ["vms", value(id, "id"), "network"]
        case .job(let id): return ["jobs", value(id, "id")]
        case .jobCancel(let id): return ["jobs", value(id, "id"), "cancel"]
        case .settingsConnections: return ["settings", "connections"]
        case .settingsConnectionTest: return ["settings", "connections", "test"]
        case .settingsConnectionDelete(let id): return ["settings", "connections", value(id, "id"), "delete"]
        case .settingsRoles: return ["settings", "roles"]
        case .settingsRoleMonitor(let id): return ["settings", "roles", value(id, "id"), "monitor"]
        case .settingsRoleMonitorDelete(let id): return ["settings", "roles", value(id, "id"), "monitor", "delete"]
        case .settingsSSHKeys: return ["settings", "ssh-keys"]
        case .settingsSSHKeysRotate: return ["settings", "ssh-keys", "rotate"]
        case .notifications: return ["settings", "notifications"]
        case .notificationsSettings: return ["settings", "notifications", "settings"]
        case .notificationsTestMail: return ["settings", "notifications", "test-mail"]
        case .notificationsWebhooks: return ["settings", "notifications", "webhooks"]
        case .notificationsWebhookTest(let id): return ["settings", "notifications", "webhooks", value(id, "id"), "test"]
        case .notificationsWebhookDelete(let id): return ["settings", "notifications", "webhooks", value(id, "id"), "delete"]
        case .notificationsDeliveries: return ["settings", "notifications", "deliveries"]
        case .settingsInstances: return ["settings", "instances"]
        case .upgrades: return ["upgrades"]
        case .upgradesStart: return ["upgrades", "start"]
        case .upgradesRollback: return ["upgrades", "rollback"]
        case .roleApplication(let id): return ["settings", "roles", value(id, "id"), "application"]
        case .upgradeHooks: return ["upgrades", "hooks"]
        case .upgradeHookDelete(let id): return ["upgrades", "hooks", value(id, "id"), "delete"]
        case .upgradeAutoUpgrade: return ["upgrades", "auto"]
        case .serviceConfiguration: return ["configuration"]
        case .serviceProfiles: return ["configuration", "profiles"]
        case .serviceProfile(let id): return ["configuration", "profiles", value(id, "id")]
        case .serviceProfileExamples: return ["configuration", "examples"]
        case .configurationWizard: return ["configuration", "wizard"]
        case .configurationRuns: return ["configuration", "runs"]
        case .configurationRun(let id): return ["configuration", "runs", value(id, "id")]
        case .configurationDrift: return ["configuration", "drift"]
        case .jobs: return ["jobs"]
        case .settings: return ["settings"]
        case .logs: return ["logs"]
        case .logsDelete: return ["logs", "delete"]
        case .logsBackup: return ["logs", "backup"]
        case .logBackups: return ["logs", "backups"]
        case .logBackup(let name): return ["logs", "backups", name.map { .constant($0) } ?? .parameter("name")]
        case .users: return ["users"]
        case .usersNew: return ["users", "new"]
        case .user(let id): return ["users", value(id, "id")]
        case .userEdit(let id): return ["users", value(id, "id"), "edit"]
        case .userDelete(let id): return ["users", value(id, "id"), "delete"]
        case .userTokenRevoke(let user, let token): return ["users", value(user, "id"), "tokens", value(token, "tokenID"), "revoke"]
        case .account: return ["account"]
        case .accountPassword: return ["account", "password"]
        case .accountTokens: return ["account", "tokens"]
        case .accountTokenRevoke(let id): return ["account", "tokens", value(id, "id"), "revoke"]
        case .stylesheet: return ["css", "flotilla.css"]
        case .script: return ["js", "flotilla.js"]
        }
    }
}

/// Builders for URLs with query strings.
enum WebPath {
    static func signIn(next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//") else { return SiteURL.signIn.relative }
        return SiteURL.signIn.relative + "?" + query([("next", next)])
    }

    static func query(_ items: [(String, String)]) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+?#")
        return items.map { key, value in
            "\(key.addingPercentEncoding(withAllowedCharacters: allowed) ?? key)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")"
        }.joined(separator: "&")
    }
}
