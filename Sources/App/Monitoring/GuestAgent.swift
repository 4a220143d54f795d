import Foundation
import RemoteShell

/// Puts the monitor agent and its configuration on a guest over the VM's pinned SSH login
/// (SPEC MON-1). Files travel on standard input, never inside a command line; the commands
/// themselves are fixed text.
struct GuestAgent {
    let operations: VMOperations

    static let programPath = "/usr/local/sbin/flotilla-agent"

    /// Copies the program, writes the configuration and installs the boot hook (systemd unit
    /// or /etc/rc.local), which also starts the agent.
    func install(_ vmID: UUID, program: [UInt8], configuration: String, context: StepContext) async throws {
        let (target, user) = try await login(vmID)
        try await run(
            Command.script(
                #"set -e; umask 022; mkdir -p /usr/local/sbin; cat > "$1.new"; chmod 755 "$1.new"; mv -f "$1.new" "$1""#,
                arguments: [Self.programPath]
            ).asRoot(loggedInAs: user), input: program, on: target, what: "copy the agent")
        await context.log("agent program copied to \(Self.programPath)")
        try await configure(target, user: user, configuration: configuration)
        await context.log("configuration written")
        let result = try await run(Command(Self.programPath, "install").asRoot(loggedInAs: user), on: target, what: "install the boot hook")
        await context.log(
            "started at boot by \(String(decoding: result.standardOutput, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
    }

    /// Reboots the guest through vSphere (a reset where the guest cannot reboot itself), so the
    /// boot hook, not the install, is what starts the agent that sends the first heartbeat.
    func reboot(_ vmID: UUID, context: StepContext) async throws {
        let placement = try await operations.placement(of: vmID)
        guard let machine = placement.machine else { throw FlotillaError.conflict("\(placement.vm.hostName) has no VM on vSphere") }
        let how: String
        switch try await machine.rebootGuest() {
        case .guest: how = "through the guest"
        case .hardFallback(let reason): how = "by a reset (\(reason))"
        }
        await operations.shell.closeConnections(toHost: placement.vm.ip)
        await context.log("rebooted \(placement.vm.hostName) \(how); waiting for the agent's first heartbeat")
    }

    /// Replaces the configuration; the running agent notices the change and reloads it.
    func configure(_ vmID: UUID, configuration: String, context: StepContext) async throws {
        let (target, user) = try await login(vmID)
        try await configure(target, user: user, configuration: configuration)
        await context.log("configuration written; the agent reloads it within a second")
    }

    private func configure(_ target: SSHTarget, user: String, configuration: String) async throws {
        try await run(
            Command.script(
                #"set -e; umask 077; mkdir -p /etc/flotilla-agent; cat > /etc/flotilla-agent/config.json.new; mv -f /etc/flotilla-agent/config.json.new /etc/flotilla-agent/config.json"#
            ).asRoot(loggedInAs: user), input: Array(configuration.utf8), on: target, what: "write the agent's configuration")
    }

    private func login(_ vmID: UUID) async throws -> (SSHTarget, String) {
        let placement = try await operations.placement(of: vmID)
        let user = placement.role.sshUser
        return (try await operations.login.target(for: placement.vm, user: user), user)
    }

    @discardableResult
    private func run(_ command: Command, input: [UInt8] = [], on target: SSHTarget, what: String) async throws -> CommandResult {
        let result = try await operations.shell.run(command, on: target, standardInput: input, timeout: .seconds(60))
        guard result.exitStatus == 0 else {
            let message = String(decoding: result.standardError.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw FlotillaError.conflict("could not \(what) (exit \(result.exitStatus)): \(message)")
        }
        return result
    }
}
