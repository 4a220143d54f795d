import Fluent
import Foundation
import SQLKit
import Vapor

/// Managing upgrade hooks and auto-upgrade switches (issue 12 §6), for the hooks page.
struct UpgradeHooks {
    let database: any Database
    let secrets: SecretBox
    let actor: AuditLog.Actor
    let logger: Logger

    /// One application in one environment that has VMs of its role, with its switch.
    struct Target: Sendable {
        var application: UpgradeApplication
        var roleName: String
        var environment: Environment
        var autoUpgrade: AutoUpgrade?
    }

    func hooks() async throws -> [UpgradeHook] {
        try await UpgradeHook.query(on: database).sort(\.$createdAt).all()
    }

    /// Makes a hook; its secret is returned here, once, and kept only sealed.
    func add(format formatText: String, repositoryURL: String) async throws -> (hook: UpgradeHook, secret: String) {
        guard let format = UpgradeHookFormat(rawValue: formatText) else {
            throw FlotillaError.validation("the sender is one of " + UpgradeHookFormat.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let url = repositoryURL.trimmingCharacters(in: .whitespaces)
        do {
            _ = try RepositoryLocation(kind: format.repositoryKind ?? .git, url: url)
        } catch let error as RepositoryError {
            // A generic hook may serve either kind: an SVN URL is fine too.
            guard format == .generic, (try? RepositoryLocation(kind: .svn, url: url)) != nil else {
                throw FlotillaError.validation(error.description)
            }
        }
        let secret = [UInt8].random(count: 32).base64URLEncodedString()
        let hook = UpgradeHook()
        hook.format = format.rawValue
        hook.repositoryURL = url
        hook.secretSealed = try secrets.seal(secret)
        hook.createdBy = actor.name
        try await hook.create(on: database)
        await AuditLog.record(
            .operation, action: "upgrade.hook.add", result: .success, details: "added a \(format.title) upgrade hook for \(url)",
            by: actor, on: database, logger: logger)
        return (hook, secret)
    }

    func delete(_ id: UUID) async throws {
        guard let hook = try await UpgradeHook.find(id, on: database) else { throw FlotillaError.notFound("no such upgrade hook") }
        try await hook.delete(on: database)
        await AuditLog.record(
            .operation, action: "upgrade.hook.delete", result: .success,
            details: "deleted the \(UpgradeHookFormat(rawValue: hook.format)?.title ?? hook.format) upgrade hook for \(hook.repositoryURL)",
            by: actor, on: database, logger: logger)
    }

    /// Every application with every environment that has VMs of its role, and their switches.
    func targets() async throws -> [Target] {
        guard let sql = database as? any SQLDatabase else { throw LeaderLease.LeaseError.needsSQL }
        struct Pair: Decodable {
            var role_id: UUID
            var environment_id: UUID
        }
        let pairs = try await sql.select().distinct().columns("role_id", "environment_id").from(VM.schema).all(decoding: Pair.self)
        let applications = try await UpgradeApplication.query(on: database).all()
        let roles = Dictionary(try await Role.query(on: database).all().map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        let environments = Dictionary(
            try await Environment.query(on: database).all().map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let switches = try await AutoUpgrade.query(on: database).all()
        var targets: [Target] = []
        for application in applications {
            for pair in pairs where pair.role_id == application.roleID {
                guard let environment = environments[pair.environment_id] else { continue }
                let autoUpgrade = switches.first { $0.applicationID == application.id && $0.environmentID == pair.environment_id }
                targets.append(
                    Target(
                        application: application, roleName: roles[application.roleID] ?? "?", environment: environment,
                        autoUpgrade: autoUpgrade))
            }
        }
        return targets.sorted { ($0.roleName, $0.environment.name) < ($1.roleName, $1.environment.name) }
    }

    /// Turns auto-upgrade of an application in an environment on or off, with its branch filter.
    func setAutoUpgrade(applicationID: UUID, environmentID: UUID, enabled: Bool, branches: String) async throws -> AutoUpgrade {
        guard let application = try await UpgradeApplication.find(applicationID, on: database) else {
            throw FlotillaError.notFound("no such application")
        }
        guard let environment = try await Environment.find(environmentID, on: database) else {
            throw FlotillaError.notFound("no such environment")
        }
        let filter = try AutoUpgradeBranches.validate(branches)
        if !filter.isEmpty, application.repositoryKind == RepositoryLocation.Kind.svn.rawValue {
            throw FlotillaError.validation("SVN applications follow their URL; branch filters are for Git")
        }
        let autoUpgrade =
            try await AutoUpgrade.query(on: database).filter(\.$applicationID == applicationID)
            .filter(\.$environmentID == environmentID).first() ?? AutoUpgrade()
        autoUpgrade.applicationID = applicationID
        autoUpgrade.environmentID = environmentID
        autoUpgrade.enabled = enabled
        autoUpgrade.branches = filter
        autoUpgrade.changedBy = actor.name
        try await autoUpgrade.save(on: database)
        if !enabled {
            try await PendingAutoUpgrade.query(on: database).filter(\.$applicationID == applicationID)
                .filter(\.$environmentID == environmentID).delete()
        }
        let role = try await Role.find(application.roleID, on: database)?.name ?? "?"
        let branchText = filter.isEmpty ? "" : " (branches \(filter))"
        await AuditLog.record(
            .upgrade, action: enabled ? "upgrade.auto.on" : "upgrade.auto.off", result: .success,
            details: "auto-upgrade of \(role) in \(environment.name) turned \(enabled ? "on" : "off")\(enabled ? branchText : "")",
            vmRole: role, by: actor, on: database, logger: logger)
        return autoUpgrade
    }

    /// Where a sender posts: `<base>/api/v1/hooks/<format>/<id>`.
    static func endpoint(_ hook: UpgradeHook, base: String) throws -> String {
        "\(base)/api/v1/hooks/\(hook.format)/\(try hook.requireID().uuidString.lowercased())"
    }

    /// The line to put in the SVN repository's `hooks/post-commit` (after Subversion's template
    /// sets `REPOS="$1"` and `REV="$2"`); the token is there only when it is known (just made).
    static func postCommitLine(endpoint: String, token: String?) -> String {
        "curl -fsS -m 10 -H 'X-Flotilla-Token: \(token ?? "TOKEN")' --data-urlencode \"repository=$REPOS\" "
            + "--data-urlencode \"revision=$REV\" --data-urlencode \"author=$(svnlook author -r \"$REV\" \"$REPOS\")\" '\(endpoint)'"
    }
}

extension Request {
    var upgradeHooks: UpgradeHooks {
        UpgradeHooks(database: db, secrets: application.flotilla.secrets, actor: auditActor, logger: logger)
    }

    /// This server as the sender reached it (scheme and Host header), for the hook URLs shown.
    var hookBaseURL: String {
        let host = headers.first(name: .host) ?? "127.0.0.1"
        return (arrivedOverHTTPS ? "https" : "http") + "://" + host
    }
}
