import Fluent
import Foundation
import SQLKit
import Vapor

/// Takes an inbound upgrade hook (issue 12 §6): finds the hook, verifies the sender, reads the
/// revision, and queues it for every application of that repository whose auto-upgrade is on
/// in an environment and whose branch filter matches. Nothing is rolled out here: the burst
/// waits in `PendingAutoUpgrade` for its quiet period, and `AutoUpgradeScheduler` starts one
/// rollout of its newest revision.
struct HookReception {
    let database: any Database
    let secrets: SecretBox
    let quietSeconds: Int
    let logger: Logger

    func receive(
        format: UpgradeHookFormat, hookID: UUID?, headers: HTTPHeaders, body: Data, from ip: String?
    ) async throws -> API.HookAnswer {
        // An unknown hook answers exactly like an unknown path, before any secret or body is read.
        guard let hookID, let hook = try await UpgradeHook.find(hookID, on: database), hook.format == format.rawValue else {
            throw Abort(.notFound)
        }
        let actor = AuditLog.Actor(name: "hook \(format.rawValue)", ip: ip)
        let delivery = HookDelivery(format: format, headers: headers, body: body)
        do {
            try delivery.verify(secret: try secrets.open(hook.secretSealed))
        } catch let refusal as HookDelivery.Refusal {
            await note(hook, "refused: \(refusal.reason)")
            await AuditLog.record(
                .error, action: "upgrade.hook.refused", result: .denied,
                details: "\(format.title) hook for \(hook.repositoryURL) refused: \(refusal.reason)", by: actor, on: database,
                logger: logger)
            throw FlotillaError(.unauthenticated, "hook refused")
        }
        let event: HookEvent
        do {
            event = try delivery.event()
        } catch {
            let reason = FlotillaError.describe(error)
            await note(hook, "malformed: \(reason)")
            await AuditLog.record(
                .error, action: "upgrade.hook.malformed", result: .failure,
                details: "\(format.title) hook for \(hook.repositoryURL): \(reason)", by: actor, on: database, logger: logger)
            throw error
        }
        switch event {
        case .ignored(let why):
            await note(hook, "ignored: \(why)")
            return API.HookAnswer(result: "ignored: \(why)", queued: 0)
        case .push(let revision, let branch, let pushedBy):
            let outcome = try await queue(revision: revision, branch: branch, pushedBy: pushedBy, from: hook, format: format)
            let queued = outcome.queued
            let what = "revision \(revision)" + (branch.map { " on \($0)" } ?? "") + " by \(pushedBy)"
            var result = queued.isEmpty ? "\(what): no auto-upgrade follows it" : "\(what) queued for \(queued.joined(separator: ", "))"
            if !outcome.skipped.isEmpty {
                result += "; \(outcome.skipped.map { "\($0) (skipped: marked bad)" }.joined(separator: ", "))"
            }
            await note(hook, result)
            await AuditLog.record(
                .upgrade, action: "upgrade.hook.received", result: .success,
                details: "\(format.title) hook for \(hook.repositoryURL): \(result)"
                    + (queued.isEmpty ? "" : " (one rollout after \(quietSeconds) s without a newer commit)"),
                by: actor, on: database, logger: logger)
            return API.HookAnswer(result: queued.isEmpty ? "accepted: no auto-upgrade follows it" : "queued", queued: queued.count)
        }
    }

    /// Queues the revision for each matching application and environment; returns them, and the
    /// ones skipped because the revision is marked bad there, as "application role in environment".
    private func queue(
        revision: String, branch: String?, pushedBy: String, from hook: UpgradeHook, format: UpgradeHookFormat
    ) async throws -> (queued: [String], skipped: [String]) {
        let hookID = try hook.requireID()
        let arrival = Int64(Date().timeIntervalSince1970 * 1000)
        let applications = try await Self.applications(following: hook, on: database)
        // Every application checks the revision before any is queued: bad input changes nothing.
        for application in applications {
            let kind = try application.location.kind
            do {
                try RepositoryAccess.validate(revision, for: kind)
            } catch let error as RepositoryError {
                throw UpgradeRollouts.flotillaError(error)
            }
            if kind == .git, format != .generic, !Self.isCommitID(revision) {
                throw FlotillaError.validation("a push names its new commit id in 'after'")
            }
        }
        var queued: [String] = []
        var skipped: [String] = []
        for application in applications {
            let applicationID = try application.requireID()
            let kind = try application.location.kind
            // SVN revisions order themselves; Git commits by arrival (a push's `after` is its branch's newest).
            let order = kind == .svn ? Int64(revision) ?? 0 : arrival
            let switches = try await AutoUpgrade.query(on: database)
                .filter(\.$applicationID == applicationID).filter(\.$enabled == true).all()
            for autoUpgrade in switches {
                let patterns = AutoUpgradeBranches.patterns(autoUpgrade.branches, default: application.branch)
                if kind == .git, let branch, !AutoUpgradeBranches.matches(branch, patterns) { continue }
                if try await BadRevisions(database: database).isBad(applicationID: applicationID, revision: revision) {
                    skipped.append(try await describe(application, autoUpgrade.environmentID))
                    continue
                }
                try await PendingAutoUpgrades(database: database).add(
                    applicationID: applicationID, environmentID: autoUpgrade.environmentID, hookID: hookID,
                    revision: revision, order: order, pushedBy: pushedBy, quietSeconds: quietSeconds)
                queued.append(try await describe(application, autoUpgrade.environmentID))
            }
        }
        return (queued, skipped)
    }

    /// The applications whose repository is the hook's: the same Git URL (give or take a
    /// trailing `/` or `.git`), or an SVN URL at or below the hook's.
    static func applications(following hook: UpgradeHook, on database: any Database) async throws -> [UpgradeApplication] {
        var query = UpgradeApplication.query(on: database)
        if let kind = UpgradeHookFormat(rawValue: hook.format)?.repositoryKind {
            query = query.filter(\.$repositoryKind == kind.rawValue)
        }
        let hookURL = normalized(hook.repositoryURL)
        return try await query.all().filter { application in
            let url = normalized(application.repositoryURL)
            let isSVN = application.repositoryKind == RepositoryLocation.Kind.svn.rawValue
            return url == hookURL || (isSVN && url.hasPrefix(hookURL + "/"))
        }
    }

    static func normalized(_ url: String) -> String {
        var text = url
        while text.hasSuffix("/") { text.removeLast() }
        if text.hasSuffix(".git") { text.removeLast(4) }
        return text
    }

    private static func isCommitID(_ text: String) -> Bool {
        (text.count == 40 || text.count == 64) && text.allSatisfy(\.isHexDigit)
    }

    private func describe(_ application: UpgradeApplication, _ environmentID: UUID) async throws -> String {
        let role = try await Role.find(application.roleID, on: database)?.name ?? "?"
        let environment = try await Environment.find(environmentID, on: database)?.name ?? "?"
        return "\(role) in \(environment)"
    }

    /// Keeps the hook's last delivery for the page; a failure to write it changes no answer.
    private func note(_ hook: UpgradeHook, _ result: String) async {
        hook.lastDeliveryAt = Date()
        hook.lastResult = String(result.prefix(300))
        do {
            try await hook.save(on: database)
        } catch {
            logger.warning("cannot record the upgrade hook's last delivery: \(FlotillaError.describe(error))")
        }
    }
}

/// Branch filters of auto-upgrade switches: comma-separated names or shell patterns (`release/*`).
enum AutoUpgradeBranches {
    static func patterns(_ text: String, default branch: String?) -> [String] {
        let given = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return given.isEmpty ? [branch ?? "main"] : given
    }

    static func matches(_ branch: String, _ patterns: [String]) -> Bool {
        patterns.contains { fnmatch($0, branch, 0) == 0 }
    }

    /// Checks a filter as typed: at most 20 patterns of branch-name characters and `*?[]`.
    static func validate(_ text: String) throws -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-*?[]")
        let patterns = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard patterns.count <= 20, patterns.allSatisfy({ $0.count <= 100 && $0.allSatisfy(allowed.contains) && !$0.hasPrefix("-") })
        else {
            throw FlotillaError.validation("branches are comma-separated names or patterns such as main, release/*")
        }
        return patterns.joined(separator: ", ")
    }
}
