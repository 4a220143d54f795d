import Foundation
import RemoteShell

/// The releases of an application on one guest (issue 12 §3, UPG-6), over the VM's pinned SSH
/// login. Layout under the deploy directory:
///
///     releases/<revision>-<time>/   one per staged revision; its REVISION file is written last
///     current -> releases/<name>    replaced by rename(2) of a new link: never missing
///     releases.log                  "time staged|switch ..." lines: what went where, and when
///
/// The tarball travels on standard input; every script is fixed text and every value an
/// argument, so neither revision names nor paths become shell code. Build, restart and health
/// commands are the application's own (set by a system administrator) and run with `sh -c`.
///
/// Whose rights: unpacking, the `current` link, pruning and the restart command (a service
/// manager's) are root's work (`sudo -n` for a role user other than root). The build and the
/// health command run the repository's code — which a push changes, and auto-upgrade deploys
/// every push — so they run as the role's user, as Capistrano's and Deployer's deploy user
/// does: a release with a build command is that user's, so the build can write in it.
struct GuestReleases {
    let shell: any GuestShell
    let target: SSHTarget
    let user: String

    /// Where a switch went: release names (empty for none).
    struct Switch: Sendable, Equatable {
        var from: String
        var to: String
    }

    /// Unpacks the tarball into `releases/<name>`, runs the build there, writes REVISION, logs
    /// the staging and removes the oldest releases beyond `kept` (never the current one). A
    /// release already complete (an earlier run got that far) is kept as it is.
    func stage(
        tarball: [UInt8], deployDirectory: String, name: String, revision: String, buildCommand: String?, kept: Int
    ) async throws -> String {
        let result = try await run(
            Command.script(
                #"""
                set -e
                d="$1"; n="$2"; r="$d/releases/$n"
                mkdir -p "$d/releases"
                if [ -f "$r/REVISION" ]; then cat >/dev/null; echo "already staged"; exit 0; fi
                rm -rf "$r"; mkdir "$r"
                tar -x -o -f - -C "$r"
                if [ -n "$4" ]; then
                  if [ "$6" = root ]; then (cd "$r" && sh -c "$4"); else chown -R "$6" "$r" && (cd "$r" && sudo -n -u "$6" -- sh -c "$4"); fi \
                    >"$r.build.log" 2>&1 || { echo "build failed:" >&2; tail -n 5 "$r.build.log" >&2; exit 4; }
                fi
                printf '%s\n' "$3" > "$r/REVISION"
                echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) staged $n" >> "$d/releases.log"
                cur=$(readlink "$d/current" 2>/dev/null || true); cur=${cur#releases/}
                ls -1 "$d/releases" | grep -v '\.build\.log$' | awk -F- '{print $NF" "$0}' | sort -r | tail -n +$(($5 + 1)) |
                  while read -r t x; do if [ "$x" != "$cur" ] && [ "$x" != "$n" ]; then rm -rf "$d/releases/$x" "$d/releases/$x.build.log"; echo "removed $x"; fi; done
                echo "staged"
                """#, arguments: [deployDirectory, name, revision, buildCommand ?? "", String(kept), user]
            ).asRoot(loggedInAs: user), input: tarball, what: "stage the release", timeout: .seconds(600))
        return result
    }

    /// Points `current` at `releases/<name>` (a new link renamed over the old one), logs the
    /// switch and runs the restart command in the new release.
    func switchTo(_ name: String, deployDirectory: String, restartCommand: String) async throws -> Switch {
        let output = try await run(
            Command.script(
                #"""
                set -e
                d="$1"; n="$2"
                [ -f "$d/releases/$n/REVISION" ] || { echo "release $n is not staged on this VM" >&2; exit 3; }
                old=$(readlink "$d/current" 2>/dev/null || true); old=${old#releases/}
                ln -sfn "releases/$n" "$d/current.new"
                mv -T "$d/current.new" "$d/current"
                echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) switch ${old:--} -> $n" >> "$d/releases.log"
                echo "from=$old"
                cd "$d/current"
                sh -c "$3" </dev/null >/dev/null 2>"$d/restart.err" || { echo "restart failed:" >&2; tail -n 5 "$d/restart.err" >&2; exit 5; }
                """#, arguments: [deployDirectory, name, restartCommand]
            ).asRoot(loggedInAs: user), what: "switch to \(name)", timeout: .seconds(120))
        let from = output.split(separator: "\n").first { $0.hasPrefix("from=") }.map { String($0.dropFirst(5)) } ?? ""
        return Switch(from: from, to: name)
    }

    /// The release to go back to: the newest kept release of `revision` (a commit id's first 12
    /// characters or an SVN number), or (nil) the newest kept release older than the current one,
    /// as Capistrano's rollback. Nil when there is none.
    func rollbackTarget(revision: String?, deployDirectory: String) async throws -> String? {
        let output = try await run(
            Command.script(
                #"""
                d="$1"; rev="$2"
                cur=$(readlink "$d/current" 2>/dev/null || true); cur=${cur#releases/}
                for x in "$d"/releases/*; do
                  b=${x##*/}
                  [ -f "$x/REVISION" ] || continue
                  if [ -n "$rev" ]; then case "$b" in "$rev"-*) echo "${b##*-} $b";; esac; else echo "${b##*-} $b"; fi
                done | sort -r | awk -v rev="$rev" -v ct="${cur##*-}" -v cur="$cur" '
                  rev != "" { print $2; exit }
                  cur != "" && $1 < ct { print $2; exit }'
                """#, arguments: [deployDirectory, revision ?? ""]
            ).asRoot(loggedInAs: user), what: "read the kept releases", timeout: .seconds(30))
        let name = output.trimmingCharacters(in: .whitespacesAndNewlines)
        return name.isEmpty ? nil : name
    }

    /// The release `current` points at, and the kept releases, newest first.
    func state(deployDirectory: String) async throws -> (current: String?, kept: [String]) {
        let output = try await run(
            Command.script(
                #"""
                d="$1"
                cur=$(readlink "$d/current" 2>/dev/null || true); echo "current=${cur#releases/}"
                [ -d "$d/releases" ] && ls -1 "$d/releases" | grep -v '\.build\.log$' | awk -F- '{print $NF" "$0}' | sort -r | cut -d' ' -f2
                true
                """#, arguments: [deployDirectory]
            ).asRoot(loggedInAs: user), what: "read the releases", timeout: .seconds(30))
        var current: String?
        var kept: [String] = []
        for line in output.split(separator: "\n").map(String.init) {
            if line.hasPrefix("current=") {
                let name = String(line.dropFirst(8))
                current = name.isEmpty ? nil : name
            } else if !line.isEmpty {
                kept.append(line)
            }
        }
        return (current, kept)
    }

    /// Runs the health command in the current release, as the role's user; true when it exits 0.
    func commandIsHealthy(_ command: String, deployDirectory: String) async throws -> Bool {
        let result = try await shell.run(
            Command.script(#"cd "$1/current" && sh -c "$2" </dev/null >/dev/null 2>&1"#, arguments: [deployDirectory, command]),
            on: target, standardInput: [], timeout: .seconds(15))
        return result.exitStatus == 0
    }

    /// Fetches `url` on the guest itself (curl, wget or Python, whichever it has); true on a 2xx/3xx answer.
    func urlIsHealthy(_ url: String) async throws -> Bool {
        let result = try await shell.run(
            Command.script(
                #"""
                if command -v curl >/dev/null 2>&1; then exec curl -fsS -m 5 -o /dev/null -- "$1"; fi
                if command -v wget >/dev/null 2>&1; then exec wget -q -T 5 -O /dev/null -- "$1"; fi
                exec python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' "$1"
                """#, arguments: [url]), on: target, standardInput: [], timeout: .seconds(15))
        return result.exitStatus == 0
    }

    /// A release directory's name: `<revision>-<UTC time to the millisecond>` (a Git commit id
    /// shortened to 12). The time orders releases, so two rollouts within one second must differ.
    static func releaseName(revision: String, kind: RepositoryLocation.Kind, at time: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmssSSS'Z'"
        let id = kind == .git ? String(revision.prefix(12)) : revision
        return "\(id)-\(formatter.string(from: time))"
    }

    /// The revision part of a release name.
    static func revision(ofRelease name: String) -> String {
        name.split(separator: "-").dropLast().joined(separator: "-")
    }

    private func run(
        _ command: Command, input: [UInt8] = [], what: String, timeout: Duration
    ) async throws -> String {
        let result = try await shell.run(command, on: target, standardInput: input, timeout: timeout)
        guard result.exitStatus == 0 else {
            let message = String(decoding: result.standardError.suffix(600), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            throw FlotillaError.conflict("could not \(what) (exit \(result.exitStatus)): \(message)")
        }
        return String(decoding: result.standardOutput, as: UTF8.self)
    }
}
