import RemoteShell

/// How a guest's network is configured from inside; a role names its style
/// (`Role.networkStyle`), and `GuestNetwork` writes that style's configuration.
enum NetworkStyle: String, CaseIterable, Sendable {
    /// Debian's `/etc/network/interfaces`, applied with `ifdown`/`ifup` on `eth0`.
    case ifupdown

    /// The role's style; a value this version does not know is refused rather than guessed.
    init(role: Role) throws {
        guard let style = NetworkStyle(rawValue: role.networkStyle) else {
            throw FlotillaError.validation("role \(role.name) has the unknown network style '\(role.networkStyle.prefix(32))'")
        }
        self = style
    }
}

/// Changing a guest's address from inside (SPEC VM-10), in two halves: `apply` starts the
/// change on the old address with a guard on the guest that restores the old configuration
/// unless `confirm` reaches the new address in time.
struct GuestNetwork {
    let shell: any GuestShell
    /// How long `confirm` keeps trying the new address (the guest waits 40 s before reverting).
    var confirmTimeout: Duration = .seconds(30)
    var probeInterval: Duration = .milliseconds(700)

    /// Writes the new configuration and starts applying it (as root: through `sudo -n` for any
    /// other user), detached so it survives the SSH session it cuts; then drops the pooled
    /// connections to the old address.
    func apply(_ spec: VMSpec, style: NetworkStyle, on old: SSHTarget, hostName: String, context: StepContext) async throws {
        switch style {
        case .ifupdown:
            try await applyIfupdown(spec, on: old, hostName: hostName, context: context)
        }
        await shell.closeConnections(toHost: old.host)
    }

    private func applyIfupdown(_ spec: VMSpec, on old: SSHTarget, hostName: String, context: StepContext) async throws {
        let dns = [spec.dns1, spec.dns2].compactMap { $0 }
        let interfaces = """
            auto lo
            iface lo inet loopback

            auto eth0
            iface eth0 inet static
                address \(spec.ip)/\(spec.prefixLength)
                gateway \(spec.gateway)
            \(dns.isEmpty ? "" : "    dns-nameservers " + dns.joined(separator: " "))

            """
        let resolv = dns.map { "nameserver \($0)" }.joined(separator: "\n")
        await context.log("applying \(spec.ip)/\(spec.prefixLength) via \(spec.gateway) inside \(hostName)")
        // The new file arrives on standard input; the change is detached so it survives the SSH
        // session it cuts, and reverts unless confirmed within 40 s.
        let apply = try await shell.run(
            Command.script(
                """
                set -e
                umask 022
                cat > /etc/network/interfaces.flotilla-new
                cp /etc/network/interfaces /etc/network/interfaces.flotilla-old
                rm -f /run/flotilla-network-confirmed
                nohup sh -c '
                  sleep 1
                  ifdown eth0
                  mv /etc/network/interfaces.flotilla-new /etc/network/interfaces
                  [ -n "$1" ] && printf "%s\n" "$1" > /etc/resolv.conf
                  ifup eth0
                  sleep 40
                  if [ ! -e /run/flotilla-network-confirmed ]; then
                    ifdown eth0
                    cp /etc/network/interfaces.flotilla-old /etc/network/interfaces
                    ifup eth0
                  fi
                ' sh "$1" >/dev/null 2>&1 &
                """, arguments: [resolv]
            ).asRoot(loggedInAs: old.user), on: old, standardInput: Array(interfaces.utf8), timeout: .seconds(20))
        guard apply.succeeded else { throw FlotillaError(.unavailable, "could not start the change: \(apply.errorOutput.prefix(200))") }
    }

    /// Logs in on the new address and marks the change confirmed, so the guest keeps it.
    /// Throws when the new address does not answer in time (the guest then reverts by itself).
    func confirm(on new: SSHTarget, hostName: String, context: StepContext) async throws {
        let deadline = ContinuousClock.now + confirmTimeout
        var reached = false
        while !reached, ContinuousClock.now < deadline {
            try await Task.sleep(for: probeInterval)
            do {
                let confirm = try await shell.run(
                    Command("touch", "/run/flotilla-network-confirmed").asRoot(loggedInAs: new.user),
                    on: new, timeout: .seconds(5))
                reached = confirm.succeeded
            } catch let error as RemoteShellError where error.kind == .hostKeyMismatch {
                // Another machine answers there: it gets nothing, and the guest goes back by itself.
                throw FlotillaError(
                    .conflict,
                    "\(error.host) answers with another host key than \(hostName)'s; "
                        + "refusing the change (\(error.message)); the guest restores its old address by itself within a minute")
            } catch {
                continue
            }
        }
        guard reached else {
            throw FlotillaError(
                .unavailable, "\(hostName) did not answer on \(new.host); the guest restores its old address by itself within a minute")
        }
        await context.log("\(hostName) answers on \(new.host); change confirmed")
    }
}
