/// A remote command line assembled only from quoted arguments and fixed script text.
///
/// SSH sends the remote user's shell one string, so any caller text concatenated into it could
/// run as code. `Command` is the only way to build that string in RemoteShell: arguments are
/// always single-quoted for POSIX sh, and free-form shell text is accepted only as a
/// `StaticString` literal, never as runtime data.
public struct Command: Sendable, Hashable, CustomStringConvertible {
    /// The exact line the remote shell receives.
    public let commandLine: String

    /// Runs `executable` with `arguments`, each passed as one word exactly as given.
    ///
    ///     Command("useradd", "-m", name)
    public init(_ executable: String, _ arguments: String...) {
        self.init(executable, arguments: arguments)
    }

    /// Runs `executable` with `arguments`, each passed as one word exactly as given.
    public init(_ executable: String, arguments: [String]) {
        commandLine = ([executable] + arguments).map(Command.quote).joined(separator: " ")
    }

    /// Runs fixed shell text with `sh -c`, passing `arguments` as `$1`, `$2`, ... so that the
    /// script refers to them as quoted parameters (`"$1"`) instead of splicing them in.
    ///
    ///     Command.script(#"set -e; printf '%s' "$1" > "$2""#, arguments: [content, path])
    public static func script(_ script: StaticString, arguments: [String] = []) -> Command {
        Command("sh", arguments: ["-c", script.description, "sh"] + arguments)
    }

    /// Runs `command` as root through `sudo -n`, for a login user other than root; `-n` makes
    /// sudo fail at once instead of waiting for a password nobody will type.
    public static func sudo(_ command: Command) -> Command {
        Command(commandLine: "sudo -n -- " + command.commandLine)
    }

    /// This command as root: unchanged for `root`, through `sudo -n` for any other user.
    public func asRoot(loggedInAs user: String) -> Command {
        user == "root" ? self : .sudo(self)
    }

    private init(commandLine: String) {
        self.commandLine = commandLine
    }

    /// Quotes `word` so that POSIX sh reads it back as exactly one word with the same bytes.
    ///
    /// Words made only of characters with no meaning to the shell stay as they are (`=` is
    /// excluded so that a first word is never read as an assignment); anything
    /// else is wrapped in single quotes, inside which only `'` needs escaping (as `'\''`).
    public static func quote(_ word: String) -> String {
        if !word.isEmpty, word.utf8.allSatisfy(isShellNeutral) {
            return word
        }
        return "'" + word.replacing("'", with: #"'\''"#) + "'"
    }

    public var description: String { commandLine }

    private static func isShellNeutral(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "_-./:,@%+".utf8.contains(byte)
        }
    }
}
