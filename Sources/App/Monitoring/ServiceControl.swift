import Fluent
import RemoteShell
import Vapor

/// An operator's start, stop or restart of a watched service (SPEC VM-13).
enum ServiceAction: String, Sendable, CaseIterable {
    case start, stop, restart
}

/// Performs service actions through the agent on the guest (`flotilla-agent stop NAME`), over
/// the VM's pinned SSH login: the agent holds a stopped service instead of restarting it.
struct ServiceControl {
    let database: any Database
    let operations: VMOperations
    let actor: AuditLog.Actor
    let logger: Logger

    static let agentProgram = "/usr/local/sbin/flotilla-agent"

    func perform(_ action: ServiceAction, service: String, on vmID: UUID) async throws {
        guard AgentReport.isPlainName(service) else { throw FlotillaError.validation("no such watched service") }
        let placement = try await operations.placement(of: vmID)
        let vm = placement.vm
        let watched = try await RoleMonitors(database: database).services(of: placement.role.requireID())
        guard watched.contains(where: { $0.name == service }) else {
            throw FlotillaError.validation("\(vm.hostName) watches no service named \(service)")
        }
        let user = placement.role.sshUser
        let result: CommandResult
        do {
            let target = try await operations.login.target(for: vm, user: user)
            result = try await operations.shell.run(
                Command(Self.agentProgram, action.rawValue, service).asRoot(loggedInAs: user), on: target, timeout: .seconds(90))
        } catch {
            await audit(action, service, vm, placement.role.name, .failure, "could not reach the guest: \(FlotillaError.describe(error))")
            throw FlotillaError(.unavailable, "could not reach \(vm.hostName): \(FlotillaError.describe(error))")
        }
        guard result.exitStatus == 0 else {
            let message = String(decoding: result.standardError.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            await audit(action, service, vm, placement.role.name, .failure, message)
            throw FlotillaError.conflict("\(action.rawValue) \(service) on \(vm.hostName) failed: \(message)")
        }
        await audit(action, service, vm, placement.role.name, .success, "")
    }

    private func audit(_ action: ServiceAction, _ service: String, _ vm: VM, _ role: String, _ result: LogResult, _ problem: String) async {
        await AuditLog.record(
            result == .success ? .operation : .error, action: "vm.service.\(action.rawValue)", result: result,
            details: "\(action.rawValue) \(service) on \(vm.ip)" + (problem.isEmpty ? "" : ": \(problem)"), vmName: vm.hostName,
            vmRole: role, by: actor, on: database, logger: logger)
    }
}

extension Request {
    var serviceControl: ServiceControl {
        ServiceControl(database: db, operations: application.flotilla.vmOperations, actor: auditActor, logger: logger)
    }
}
