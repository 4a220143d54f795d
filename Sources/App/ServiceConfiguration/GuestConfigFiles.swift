import Foundation
import RemoteShell

/// All work on a guest's configuration files and services (SPEC CFG-3, CFG-5), over the VM's
/// pinned SSH login. Paths, owners, modes and service names were validated by `ServiceProfile`
/// and travel as quoted arguments; file contents travel on standard input; the scripts are fixed
/// text. A new file is staged in `.flotilla-staged/` beside the old one (same file system, so the
/// replace is one atomic rename) and the previous versions are kept in `.flotilla-history/`
/// beside it, the last five per file: nothing is written outside the profile's folders.
struct GuestConfigFiles: Sendable {
    let shell: any GuestShell
    let target: SSHTarget

    /// How many earlier versions of each file the guest keeps.
    static let historyDepth = 5

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The file as it is on the guest now, or nil when there is none.
    func read(_ path: String) async throws -> String? {
        let result = try await run(
            Command.script(#"if [ -f "$1" ] && [ ! -L "$1" ]; then echo present; cat -- "$1"; else echo absent; fi"#, arguments: [path]),
            what: "read \(path)")
        let output = result.output
        guard output.hasPrefix("present\n") else { return nil }
        return String(output.dropFirst("present\n".count))
    }

    /// SHA-256 (hex) of each file, nil for a file that is missing.
    func digests(_ paths: [String]) async throws -> [String: String?] {
        let result = try await run(
            Command.script(
                #"for p; do if [ -f "$p" ] && [ ! -L "$p" ]; then sha256sum -- "$p" | cut -d" " -f1; else echo missing; fi; done"#,
                arguments: paths), what: "read the files' digests")
        let lines = result.output.split(separator: "\n").map(String.init)
        guard lines.count == paths.count else {
            throw Failure(description: "the guest answered \(lines.count) digests for \(paths.count) files")
        }
        return Dictionary(uniqueKeysWithValues: zip(paths, lines.map { $0 == "missing" ? nil : $0 }))
    }

    /// Writes `content` as the staged new version of `path` with its owner and mode. Refuses a
    /// path reached through a symbolic link or that is not a regular file. Returns whether it
    /// differs from the file there now.
    func stage(_ path: String, content: String, owner: String, mode: String) async throws -> Bool {
        let result = try await run(
            Command.script(
                #"""
                set -e
                p=$1; d=${p%/*}; b=${p##*/}
                if [ "$(realpath -m -- "$d")" != "$d" ]; then echo "$d is reached through a symbolic link" >&2; exit 20; fi
                if [ -L "$p" ] || { [ -e "$p" ] && [ ! -f "$p" ]; }; then echo "$p is not a regular file" >&2; exit 20; fi
                top=; a=$d
                while [ -n "$a" ] && [ ! -e "$a" ]; do top=$a; a=${a%/*}; done
                umask 022
                mkdir -p -- "$d"
                umask 077
                mkdir -p -- "$d/.flotilla-staged"
                if [ -L "$d/.flotilla-staged" ]; then echo "$d/.flotilla-staged is a symbolic link" >&2; exit 20; fi
                if [ -n "$top" ]; then printf '%s\n' "$top" > "$d/.flotilla-staged/.created"; fi
                n="$d/.flotilla-staged/$b"
                rm -f -- "$n"
                set -C
                cat > "$n"
                chown -- "$2" "$n"
                chmod -- "$3" "$n"
                if [ -f "$p" ] && cmp -s -- "$n" "$p"; then echo same; else echo changed; fi
                """#, arguments: [path, owner, mode]), input: Array(content.utf8), what: "write the new \(path)")
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines) == "changed"
    }

    /// Runs the profile's validate command on the staged file; throws with its output when it refuses.
    func validate(_ path: String, command: [String]) async throws {
        let staged = Self.stagedPath(of: path)
        let argv = command.map { $0 == ServiceProfile.filePlaceholder ? staged : $0 }
        let result = try await shell.run(
            Command(argv[0], arguments: Array(argv.dropFirst())).asRoot(loggedInAs: target.user), on: target, timeout: .seconds(60))
        guard result.succeeded else {
            let output = (result.errorOutput + result.output).trimmingCharacters(in: .whitespacesAndNewlines)
            throw Failure(description: "\(path) does not validate (\(argv[0]) exit \(result.exitStatus)): \(output.prefix(400))")
        }
    }

    /// Drops the staged files with their folder — also what a validator left there (`py_compile`
    /// writes `__pycache__/`) — after a failed validation on any VM (nothing is replaced), and the
    /// folders staging created for a file that did not exist (noted in `.flotilla-staged/.created`).
    func discardStaged(_ paths: [String]) async throws {
        try await run(
            Command.script(
                #"""
                for p; do
                  d=${p%/*}; s="$d/.flotilla-staged"
                  if [ -L "$s" ] || [ ! -d "$s" ]; then continue; fi
                  top=$(cat -- "$s/.created" 2>/dev/null || true)
                  rm -rf -- "$s"
                  [ -n "$top" ] || continue
                  case $d in "$top" | "$top"/*) ;; *) continue ;; esac
                  a=$d
                  while rmdir -- "$a" 2>/dev/null && [ "$a" != "$top" ]; do a=${a%/*}; done
                done
                true
                """#,
                arguments: paths), what: "remove the staged files")
    }

    /// Replaces each file by its staged version with one rename, keeping the old one in the
    /// history as `NAME.STAMP` (or `NAME.STAMP.absent` when there was none). Returns the paths
    /// that changed; a file whose staged version is identical is left alone.
    func replace(_ paths: [String], stamp: String) async throws -> [String] {
        let result = try await run(
            Command.script(
                #"""
                set -e
                stamp=$1; depth=$2; shift 2
                for p; do
                  d=${p%/*}; b=${p##*/}; n="$d/.flotilla-staged/$b"; h="$d/.flotilla-history"
                  [ -f "$n" ] || { echo "no staged version of $p" >&2; exit 21; }
                  if [ -f "$p" ] && cmp -s -- "$n" "$p"; then rm -f -- "$n"; continue; fi
                  mkdir -p -m 700 -- "$h"
                  if [ -f "$p" ]; then cp -p -- "$p" "$h/$b.$stamp"; else : > "$h/$b.$stamp.absent"; fi
                  i=0
                  for f in $(ls -1 -- "$h" | sort -r); do
                    case $f in "$b".[0-9]*) i=$((i+1)); if [ $i -gt "$depth" ]; then rm -f -- "$h/$f"; fi;; esac
                  done
                  mv -f -- "$n" "$p"
                  echo "$p"
                done
                for p; do s="${p%/*}/.flotilla-staged"; if [ ! -L "$s" ]; then rm -rf -- "$s"; fi; done
                """#, arguments: [stamp, String(Self.historyDepth)] + paths), what: "replace the files")
        return result.output.split(separator: "\n").map(String.init)
    }

    /// Puts back the versions `replace` kept under `stamp` (removing files that did not exist).
    func revert(_ paths: [String], stamp: String) async throws {
        try await run(
            Command.script(
                #"""
                set -e
                stamp=$1; shift
                for p; do
                  d=${p%/*}; b=${p##*/}; h="$d/.flotilla-history"
                  if [ -f "$h/$b.$stamp" ]; then
                    mkdir -p -m 700 -- "$d/.flotilla-staged"
                    cp -p -- "$h/$b.$stamp" "$d/.flotilla-staged/$b"
                    mv -f -- "$d/.flotilla-staged/$b" "$p"
                    rmdir -- "$d/.flotilla-staged" 2>/dev/null || true
                  elif [ -f "$h/$b.$stamp.absent" ]; then
                    rm -f -- "$p"
                  else
                    echo "no kept version of $p" >&2; exit 22
                  fi
                done
                """#, arguments: [stamp] + paths), what: "put the previous files back")
    }

    /// Restarts a service with whatever manages it on the guest: systemd when it runs, else
    /// supervisor when it knows the program, else the service's init script.
    func restart(_ service: String) async throws {
        try await run(
            Command.script(
                #"""
                s=$1
                if [ -d /run/systemd/system ]; then exec systemctl restart -- "$s"; fi
                if command -v supervisorctl >/dev/null 2>&1; then
                  supervisorctl status "$s" >/dev/null 2>&1; if [ $? -ne 4 ]; then exec supervisorctl restart "$s"; fi
                fi
                if [ -x "/etc/init.d/$s" ]; then exec "/etc/init.d/$s" restart; fi
                echo "no service manager on this guest knows $s" >&2; exit 3
                """#, arguments: [service]), what: "restart \(service)", timeout: .seconds(60))
    }

    /// Whether every service runs and every port answers on the guest itself; the reason when not.
    func unhealthy(services: [String], ports: [Int]) async throws -> String? {
        let result = try await shell.run(
            Command.script(
                #"""
                n=$1; shift; i=0; bad=""
                for a; do
                  i=$((i+1))
                  if [ $i -le "$n" ]; then
                    if [ -d /run/systemd/system ]; then systemctl is-active --quiet -- "$a"
                    elif command -v supervisorctl >/dev/null 2>&1 && supervisorctl status "$a" >/dev/null 2>&1; then true
                    elif [ -x "/etc/init.d/$a" ]; then "/etc/init.d/$a" status >/dev/null 2>&1
                    else false; fi || bad="$bad service $a is not running;"
                  else
                    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$a" 2>/dev/null || bad="$bad port $a does not answer;"
                  fi
                done
                printf '%s' "$bad"
                """#, arguments: [String(services.count)] + services + ports.map(String.init)
            ).asRoot(loggedInAs: target.user), on: target, timeout: .seconds(10))
        let reason = result.output.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: ";")))
        return reason.isEmpty ? nil : reason
    }

    static func stagedPath(of path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().appendingPathComponent(".flotilla-staged").appendingPathComponent(url.lastPathComponent).path
    }

    @discardableResult
    private func run(_ command: Command, input: [UInt8] = [], what: String, timeout: Duration = .seconds(30)) async throws -> CommandResult
    {
        let result = try await shell.run(command.asRoot(loggedInAs: target.user), on: target, standardInput: input, timeout: timeout)
        guard result.succeeded else {
            let message = result.errorOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            throw Failure(description: "could not \(what) on \(target.host) (exit \(result.exitStatus)): \(message.prefix(300))")
        }
        return result
    }
}
