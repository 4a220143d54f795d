import Fluent
import Foundation
import RemoteShell
import SQLKit

/// What the upgrade steps share besides their parameters: the database and guest access from
/// the step's context, and the notification policy for halted rollouts (which needs the
/// application's mail settings, hence a closure set up by `UpgradeSteps.register`).
struct UpgradeRuntime: Sendable {
    let notify: @Sendable (NotificationEvent) async -> Void

    /// The login to a VM's guest and its application's releases there.
    func releases(of vmID: UUID, context: StepContext) async throws -> (vm: VM, guest: GuestReleases) {
        guard let vm = try await VM.query(on: context.database).filter(\.$id == vmID).with(\.$role).first() else {
            throw FlotillaError.notFound("the VM record is gone")
        }
        let user = vm.role.sshUser
        let target = try await context.operations.login.target(for: vm, user: user)
        return (vm, GuestReleases(shell: context.operations.shell, target: target, user: user))
    }

    func application(_ id: UUID, on database: any Database) async throws -> UpgradeApplication {
        guard let application = try await UpgradeApplication.find(id, on: database) else {
            throw FlotillaError.notFound("the application was removed")
        }
        return application
    }

    /// Records a switch's outcome as the VM's current and previous release.
    func recordRelease(vmID: UUID, applicationID: UUID, current: String, previous: String?, on database: any Database) async throws {
        let row =
            try await UpgradeVMRelease.query(on: database).filter(\.$vmID == vmID).filter(\.$applicationID == applicationID).first()
            ?? {
                let created = UpgradeVMRelease()
                created.vmID = vmID
                created.applicationID = applicationID
                return created
            }()
        row.currentRelease = current
        row.previousRelease = previous.flatMap { $0.isEmpty ? nil : $0 }
        try await row.save(on: database)
    }

    /// Marks a rollout halted once (the first reason wins), writes the `upgrade` entry and
    /// publishes the notification; later calls change nothing. With `markBad` (the revision
    /// went live and was switched back) the revision is marked bad, so auto-upgrade leaves it.
    func halt(_ rolloutID: UUID, reason: String, vmName: String, markBad: Bool, context: StepContext) async throws {
        guard let sql = context.database as? any SQLDatabase,
            let rollout = try await UpgradeRollout.find(rolloutID, on: context.database)
        else { return }
        let halted = try await sql.update(UpgradeRollout.schema)
            .set("state", to: UpgradeRollout.State.halted.rawValue)
            .set("reason", to: String(reason.prefix(1000)))
            .where("id", .equal, rolloutID)
            .where("state", .equal, UpgradeRollout.State.running.rawValue)
            .returning("id")
            .all()
        guard !halted.isEmpty else { return }
        if markBad {
            try await BadRevisions(database: context.database).mark(
                applicationID: rollout.applicationID, revision: rollout.revision, reason: reason, by: rollout.trigger)
        }
        var roleName: String?
        if let application = try? await application(rollout.applicationID, on: context.database) {
            roleName = try await Role.find(application.roleID, on: context.database)?.name
        }
        let environment = try await Environment.find(rollout.environmentID, on: context.database)?.name ?? "?"
        let details = "rollout of \(rollout.revision) to \(environment) halted: \(reason)"
        await AuditLog.record(
            .upgrade, action: "upgrade.halt", result: .failure, details: details, vmRole: roleName,
            by: AuditLog.Actor(name: rollout.trigger, ip: nil), on: context.database, logger: context.logger)
        await context.log("rollout halted: \(reason)")
        await notify(
            NotificationEvent(
                source: .upgrade, kind: .rolloutHalted, vmName: vmName, vmRole: roleName,
                details: String(details.prefix(NotificationEvent.maximumDetailsLength))))
    }

    /// Puts a VM of a halted batch back on the release it had before the rollout (its REVISION
    /// and restart command as then); says what happened, never throws.
    func switchBack(_ row: UpgradeRolloutVM, application: UpgradeApplication, context: StepContext) async -> String {
        do {
            let (vm, guest) = try await releases(of: row.vmID, context: context)
            guard let from = row.fromRelease, !from.isEmpty else {
                row.state = .switchedBack
                row.detail = "no earlier release to go back to"
                try? await row.save(on: context.database)
                return "\(vm.hostName): had no earlier release"
            }
            let back = try await guest.switchTo(
                from, deployDirectory: application.deployDirectory, restartCommand: application.restartCommand)
            try await recordRelease(
                vmID: row.vmID, applicationID: try application.requireID(), current: from, previous: back.from, on: context.database)
            row.state = .switchedBack
            try await row.save(on: context.database)
            await AuditLog.record(
                .upgrade, action: "upgrade.switch-back", result: .success, details: "\(back.from) → \(from) (rollout halted)",
                vmName: vm.hostName, vmRole: vm.role.name, by: .system, on: context.database, logger: context.logger)
            return "\(vm.hostName): back on \(from)"
        } catch {
            row.detail = "switching back failed: \(FlotillaError.describe(error))"
            try? await row.save(on: context.database)
            return "switching back \(row.vmID) failed: \(FlotillaError.describe(error))"
        }
    }
}
