import Foundation
import RemoteShell

@testable import App

/// In-memory guests that also keep an application's releases (issue 12 §3): the upgrade
/// module's scripts (stage, switch, rollback target, state, health checks) are recognised by
/// their fixed text and acted out on a model of each guest's `releases/` and `current`; every
/// other command goes to the in-memory guests, which also check each login.
actor ReleaseGuests: GuestShell {
    /// One guest's releases: the staged ones and where `current` points.
    struct Releases: Sendable {
        var staged: [String] = []
        var current: String?
    }

    /// Which of the upgrade module's scripts a command is.
    enum Script: String, Sendable {
        case stage, switchRelease, rollbackTarget, state, healthCommand, healthURL
    }

    /// One release script as the guest received it.
    struct Call: Sendable {
        var host: String
        var user: String
        var script: Script
        /// Sent through `sudo -n`.
        var throughSudo: Bool
    }

    let guests: InMemoryGuestShell
    private(set) var releases: [String: Releases] = [:]
    private(set) var calls: [Call] = []
    /// Hosts whose health checks fail.
    private(set) var unhealthy: Set<String> = []
    /// Hosts where staging fails (a full disk, a failing build).
    private(set) var failingToStage: Set<String> = []
    /// How long a switch's restart command runs (after `current` moved).
    private(set) var restartDuration: Duration = .zero

    init(guests: InMemoryGuestShell) {
        self.guests = guests
    }

    func setUnhealthy(_ hosts: Set<String>) {
        unhealthy = hosts
    }

    func setFailingToStage(_ hosts: Set<String>) {
        failingToStage = hosts
    }

    func setRestartDuration(_ duration: Duration) {
        restartDuration = duration
    }

    func run(_ command: Command, on target: SSHTarget, standardInput: [UInt8], timeout: Duration?) async throws -> CommandResult {
        var words = Self.words(command.commandLine)
        let throughSudo = words.prefix(3) == ["sudo", "-n", "--"]
        if throughSudo { words.removeFirst(3) }
        guard words.count >= 4, words[0] == "sh", words[1] == "-c", let script = Self.script(words[2]) else {
            return try await guests.run(command, on: target, standardInput: standardInput, timeout: timeout)
        }
        _ = try await guests.hostKey(of: target)
        calls.append(Call(host: target.host, user: target.user, script: script, throughSudo: throughSudo))
        let arguments = Array(words.dropFirst(4))
        let host = target.host
        var guest = releases[host, default: Releases()]
        switch script {
        case .stage:
            if failingToStage.contains(host) { return Self.failure(4, "build failed:\nno space left on device") }
            if !guest.staged.contains(arguments[1]) { guest.staged.append(arguments[1]) }
            releases[host] = guest
            return Self.answer("staged\n")
        case .switchRelease:
            let name = arguments[1]
            guard guest.staged.contains(name) else { return Self.failure(3, "release \(name) is not staged on this VM") }
            let old = guest.current ?? ""
            guest.current = name
            releases[host] = guest
            // Cancelled like an SSH command whose caller stopped waiting.
            if restartDuration > .zero { try await Task.sleep(for: restartDuration) }
            return Self.answer("from=\(old)\n")
        case .rollbackTarget:
            let revision = arguments.count > 1 ? arguments[1] : ""
            let newestFirst = guest.staged.sorted { Self.time($0) > Self.time($1) }
            let found =
                revision.isEmpty
                ? guest.current.flatMap { current in newestFirst.first { Self.time($0) < Self.time(current) } }
                : newestFirst.first { $0.hasPrefix(revision + "-") }
            return Self.answer(found.map { $0 + "\n" } ?? "")
        case .state:
            let newestFirst = guest.staged.sorted { Self.time($0) > Self.time($1) }
            return Self.answer((["current=\(guest.current ?? "")"] + newestFirst).joined(separator: "\n") + "\n")
        case .healthCommand, .healthURL:
            return unhealthy.contains(host) ? Self.failure(1, "") : Self.answer("")
        }
    }

    func hostKey(of target: SSHTarget) async throws -> SSHHostKey {
        try await guests.hostKey(of: target)
    }

    func closeConnections(toHost host: String) async {
        await guests.closeConnections(toHost: host)
    }

    func shutdown() async {}

    /// The script by a line only it has (GuestReleases' fixed text).
    private static func script(_ text: String) -> Script? {
        if text.contains("tar -x -o -f -") { return .stage }
        if text.contains(#"mv -T "$d/current.new""#) { return .switchRelease }
        if text.contains(#"ct="${cur##*-}""#) { return .rollbackTarget }
        if text.contains(#"echo "current="#) { return .state }
        if text.contains(#"cd "$1/current" && sh -c"#) { return .healthCommand }
        if text.contains("command -v curl") { return .healthURL }
        return nil
    }

    /// A release name's time part (`<revision>-<yyyyMMddTHHmmssZ>`).
    private static func time(_ release: String) -> String {
        release.split(separator: "-").last.map(String.init) ?? ""
    }

    /// The words of a command line built by `Command` (plain words and single-quoted ones).
    private static func words(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quoted = false
        var escaped = false
        for character in line {
            if quoted {
                if character == "'" { quoted = false } else { current.append(character) }
            } else if escaped {
                current.append(character)
                escaped = false
            } else if character == "'" {
                quoted = true
                inWord = true
            } else if character == "\\" {
                escaped = true
                inWord = true
            } else if character == " " {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        if inWord { words.append(current) }
        return words
    }

    private static func answer(_ output: String) -> CommandResult {
        CommandResult(exitStatus: 0, standardOutput: Array(output.utf8), standardError: [])
    }

    private static func failure(_ status: Int, _ message: String) -> CommandResult {
        CommandResult(exitStatus: status, standardOutput: [], standardError: Array(message.utf8))
    }
}
