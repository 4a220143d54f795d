import Foundation

/// A vcsim started by the lab: the project's launcher (lab/vcsim) with one template per role.
/// It runs in its own session so it outlives the supervisor (a restarted supervisor reuses it);
/// `Lab.down` stops it. Its pid and URL are recorded in the lab's state directory.
public struct VcsimProcess: Sendable {
    /// The SDK address the launcher printed (`VCSIM_URL=...`).
    public let url: String
    public let username: String
    public let password: String
    /// SHA-256 of vcsim's self-signed certificate, to pin (`VCSIM_THUMBPRINT_SHA256=...`).
    public let thumbprint: String?
    public let pid: Int32

    /// Reuses the vcsim recorded in `stateDirectory` if it still runs, otherwise starts one
    /// (building the launcher with `scripts/vcsim build` when it is missing).
    static func startOrReuse(_ launch: VcsimLaunch, roles: [String], stateDirectory: String) async throws -> VcsimProcess {
        let record = stateDirectory + "/vcsim"
        if let recorded = read(record), isVcsim(recorded.pid) {
            return recorded
        }
        if !FileManager.default.isExecutableFile(atPath: launch.executable) {
            try await HostCommand.check(LabConfiguration.repositoryDirectory + "/scripts/vcsim", ["build"])
        }
        let outputPath = stateDirectory + "/vcsim.out"
        let logPath = stateDirectory + "/vcsim.log"
        // Started in the background of a shell, setsid does not fork, so `$!` is vcsim's own pid.
        // bash closes every descriptor but stdin/out/err first: vcsim must not hold our pipes.
        let launcher =
            #"for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null; "#
            + #"out=$1 log=$2; shift 2; setsid "$@" </dev/null >"$out" 2>"$log" & echo $!"#
        let arguments =
            [
                "-c", launcher, "flt-vcsim", outputPath, logPath,
                launch.executable, "-listen", launch.listen, "-vms", String(launch.plainVMs),
                "-templates", roles.joined(separator: ","), "-username", launch.username, "-password", launch.password,
            ] + launch.extraArguments
        let printed = try await HostCommand.check("/bin/bash", arguments).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let pid = Int32(printed) else { throw LabError.vcsimDidNotStart("no pid from the launcher: \(printed)") }
        for _ in 0..<1200 {
            let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            func value(_ name: String) -> String? {
                output.split(separator: "\n").first(where: { $0.hasPrefix(name + "=") }).map { String($0.dropFirst(name.count + 1)) }
            }
            // The launcher prints the URL, then the thumbprint, then flushes: wait for both.
            if let url = value("VCSIM_URL"), let thumbprint = value("VCSIM_THUMBPRINT_SHA256") {
                let started = VcsimProcess(
                    url: url, username: launch.username, password: launch.password, thumbprint: thumbprint, pid: pid)
                try Data([String(pid), url, launch.username, launch.password, thumbprint].joined(separator: "\n").utf8)
                    .write(to: URL(fileURLWithPath: record))
                return started
            }
            guard isRunning(pid) else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        kill(pid, SIGTERM)
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        throw LabError.vcsimDidNotStart(String(log.suffix(2000)))
    }

    /// Stops the vcsim recorded in `stateDirectory`, if any.
    static func stopRecorded(stateDirectory: String) async {
        guard let recorded = read(stateDirectory + "/vcsim"), isVcsim(recorded.pid), kill(recorded.pid, SIGTERM) == 0
        else { return }
        for _ in 0..<50 where isRunning(recorded.pid) {
            try? await Task.sleep(for: .milliseconds(100))
        }
        kill(recorded.pid, SIGKILL)
    }

    /// True while `pid` exists and has not exited (a zombie waiting for its reaper has).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let afterName = stat.range(of: ") ", options: .backwards)
        else { return false }
        return stat[afterName.upperBound...].first != "Z"
    }

    /// True when `pid` is a running vcsim launcher (not a recycled pid of something else).
    private static func isVcsim(_ pid: Int32) -> Bool {
        guard isRunning(pid), let commandLine = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) else {
            return false
        }
        let program = commandLine.split(separator: 0).first.map { String(decoding: $0, as: UTF8.self) } ?? ""
        return program.hasSuffix("/vcsim")
    }

    private static func read(_ path: String) -> VcsimProcess? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count == 5, let pid = Int32(lines[0]), pid > 1 else { return nil }
        return VcsimProcess(url: lines[1], username: lines[2], password: lines[3], thumbprint: lines[4], pid: pid)
    }
}
