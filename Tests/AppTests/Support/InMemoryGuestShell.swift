import Foundation
import RemoteShell
import VSphere

@testable import App

/// A `GuestShell` over pretend guests kept in memory, for rule tests without root or sshd.
/// Guests are found by address and log in with their password; they answer the commands
/// Flotilla sends (hostname, chpasswd, the service probe, the network change) the way a
/// Debian guest would. Failures are injected per guest.
actor InMemoryGuestShell: GuestShell {
    struct Guest: Sendable {
        var hostName: String
        var user = "root"

        init(hostName: String, user: String = "root", password: String, running: Set<String> = ["sshd"]) {
            self.hostName = hostName
            self.user = user
            passwordHash = CryptSHA512.hash(password: password)
            self.running = running
        }

        /// Whether `password` is the user's password now.
        func accepts(password: String) -> Bool {
            passwordHash.map { CryptSHA512.verify(password: password, hash: $0) } ?? false
        }

        /// The user's password as `chpasswd -e` stores it (a SHA-512 crypt hash).
        var passwordHash: String?
        /// Processes that run (the service probe reports these as up).
        var running: Set<String> = ["sshd"]
        /// Whether the guest takes a new address it is given (false: it never answers there).
        var acceptsNetworkChange = true
        /// Commands (by executable) after which the connection drops: the command's effect
        /// happens, but the caller sees a closed connection.
        var dropsAfter: Set<String> = []
        /// The guest's SSH host key (made from its host name unless given).
        var hostKey: SSHHostKey?
        /// Whether logins other than by password (a key) are accepted.
        var acceptsKeyLogin = true
    }

    /// One command as the guest received it.
    struct Call: Sendable, Equatable {
        var host: String
        var user: String
        var commandLine: String
    }

    private(set) var guests: [String: Guest] = [:]
    private(set) var calls: [Call] = []
    private(set) var closedHosts: [String] = []
    /// The most commands that ran at the same time.
    private(set) var mostConcurrent = 0
    private var concurrent = 0
    /// How long each command takes (to observe concurrency).
    var commandDuration: Duration = .zero

    func add(_ guest: Guest, at address: String) {
        var guest = guest
        if guest.hostKey == nil { guest.hostKey = Self.hostKey(for: guest.hostName) }
        guests[address] = guest
    }

    /// A well-formed ed25519 public key that belongs to `name` alone.
    static func hostKey(for name: String) -> SSHHostKey {
        var blob = Array("\u{0}\u{0}\u{0}\u{0B}ssh-ed25519\u{0}\u{0}\u{0} ".utf8)
        blob += (0..<32).map { UInt8(truncatingIfNeeded: name.utf8.reduce(Int($0) &* 31) { $0 &* 33 &+ Int($1) }) }
        // The force-try cannot fail: the text is built right here.
        return try! SSHHostKey(openSSHPublicKey: "ssh-ed25519 " + Data(blob).base64EncodedString())
    }

    func hostKey(of target: SSHTarget) async throws -> SSHHostKey {
        try login(target).hostKey ?? Self.hostKey(for: target.host)
    }

    func update(_ address: String, _ change: (inout Guest) -> Void) {
        guard var guest = guests[address] else { return }
        change(&guest)
        guests[address] = guest
    }

    func setCommandDuration(_ duration: Duration) {
        commandDuration = duration
    }

    func run(_ command: Command, on target: SSHTarget, standardInput: [UInt8], timeout: Duration?) async throws -> CommandResult {
        let guest = try login(target)
        calls.append(Call(host: target.host, user: target.user, commandLine: command.commandLine))
        concurrent += 1
        mostConcurrent = max(mostConcurrent, concurrent)
        defer { concurrent -= 1 }
        if commandDuration > .zero { try await Task.sleep(for: commandDuration) }
        var words = command.commandLine.split(separator: " ").map(String.init)
        // `Command.sudo` sends `sudo -n -- <command>`.
        if words.prefix(3) == ["sudo", "-n", "--"] { words.removeFirst(3) }
        let line = words.joined(separator: " ")
        let executable = words.first ?? ""
        let input = String(decoding: standardInput, as: UTF8.self)
        let result: CommandResult
        switch executable {
        case "hostname":
            result = Self.answer(guest.hostName + "\n")
        case "chpasswd":
            let parts = input.trimmingCharacters(in: .newlines).split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0] == guest.user else { return Self.failure("chpasswd: unknown user") }
            let encrypted = words.contains("-e")
            update(target.host) { $0.passwordHash = encrypted ? parts[1] : CryptSHA512.hash(password: parts[1]) }
            result = Self.answer("")
        case "getent":
            result = Self.answer("\(guest.user):\(guests[target.host]?.passwordHash ?? "!"):20000:0:99999:7:::\n")
        case "true", "touch", "cat", "mkdir", "chmod", "install":
            result = Self.answer("")
        case "sh" where line.contains("pgrep"):
            let names = Self.scriptArguments(line)
            result = Self.answer(names.map { guest.running.contains($0) ? "up \($0)\n" : "down \($0)\n" }.joined())
        case "sh" where line.contains("ifup"):
            moveToNewAddress(from: target.host, interfaces: Array(standardInput))
            result = Self.answer("")
        case "sh":
            result = Self.answer("")
        default:
            result = Self.failure("sh: \(executable): not found")
        }
        if guest.dropsAfter.contains(executable) {
            throw RemoteShellError(.connectionClosed, host: target.host, message: "connection closed by the guest")
        }
        return result
    }

    func closeConnections(toHost host: String) async {
        closedHosts.append(host)
    }

    func shutdown() async {}

    private func login(_ target: SSHTarget) throws -> Guest {
        guard let guest = guests[target.host] else {
            throw RemoteShellError(.connect, host: target.host, message: "no route to host")
        }
        if case .expected(let key) = target.hostKeyCheck, key != guest.hostKey {
            throw RemoteShellError(.hostKeyMismatch, host: target.host, message: "the host presented another key")
        }
        let accepted: Bool
        if case .password(let password) = target.authentication {
            accepted = guest.accepts(password: password)
        } else {
            accepted = guest.acceptsKeyLogin
        }
        guard accepted, target.user == guest.user else {
            throw RemoteShellError(.authentication, host: target.host, message: "permission denied")
        }
        return guest
    }

    /// The ifupdown change: the guest takes the address of the new interfaces file.
    private func moveToNewAddress(from host: String, interfaces file: [UInt8]?) {
        guard let file,
            let line = String(decoding: file, as: UTF8.self).split(separator: "\n").first(where: { $0.contains("address ") }),
            let address = line.split(separator: " ").last?.split(separator: "/").first.map(String.init),
            let guest = guests[host], guest.acceptsNetworkChange
        else { return }
        guests[host] = nil
        guests[address] = guest
    }

    /// The `"$@"` words of a `Command.script` line: everything after `sh -c '…' sh`.
    private static func scriptArguments(_ line: String) -> [String] {
        guard let range = line.range(of: "' sh ", options: .backwards) else { return [] }
        return line[range.upperBound...].split(separator: " ").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "'")) }
    }

    private static func answer(_ output: String) -> CommandResult {
        CommandResult(exitStatus: 0, standardOutput: Array(output.utf8), standardError: [])
    }

    private static func failure(_ message: String) -> CommandResult {
        CommandResult(exitStatus: 1, standardOutput: [], standardError: Array(message.utf8))
    }
}
