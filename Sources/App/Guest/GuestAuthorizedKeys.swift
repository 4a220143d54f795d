import RemoteShell

/// Editing the login user's `~/.ssh/authorized_keys` inside a guest, for installing and
/// rotating the platform key. Keys are matched by their base64 body, whatever their comment.
enum GuestAuthorizedKeys {
    /// Appends the key line unless the key is there already.
    static func add(_ line: String) -> Command {
        Command.script(
            #"""
            set -e
            umask 077
            mkdir -p "$HOME/.ssh"
            touch "$HOME/.ssh/authorized_keys"
            awk -v body="$2" '$2 == body { found = 1 } END { exit !found }' "$HOME/.ssh/authorized_keys" \
              || printf '%s\n' "$1" >> "$HOME/.ssh/authorized_keys"
            """#, arguments: [line, body(of: line)])
    }

    /// Removes every line of the key, leaving the others as they are.
    static func remove(_ line: String) -> Command {
        Command.script(
            #"""
            set -e
            file="$HOME/.ssh/authorized_keys"
            [ -f "$file" ] || exit 0
            umask 077
            awk -v body="$1" '$2 != body' "$file" > "$file.flotilla-new"
            mv -f "$file.flotilla-new" "$file"
            """#, arguments: [body(of: line)])
    }

    /// The base64 body of a key line (`type body comment`).
    static func body(of line: String) -> String {
        let fields = line.split(separator: " ")
        return fields.count > 1 ? String(fields[1]) : line
    }
}
