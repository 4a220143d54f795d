import Foundation

/// Reading from and writing to the person at the keyboard: prompts, passwords without echo,
/// confirmations and aligned tables.
enum Terminal {
    static var outputIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }
    static var inputIsTerminal: Bool { isatty(STDIN_FILENO) == 1 }

    static func printError(_ text: String) {
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    /// Asks on the terminal; prompts go to standard error so standard output stays the answer.
    static func ask(_ prompt: String) throws -> String {
        guard inputIsTerminal else { throw ClientFailure(.badUsage, "no terminal to ask '\(prompt)' on: give it as an option") }
        FileHandle.standardError.write(Data("\(prompt): ".utf8))
        guard let line = readLine(strippingNewline: true) else { throw ClientFailure(.badUsage, "no answer to '\(prompt)'") }
        return line
    }

    /// Asks for a secret with echo turned off (restored even when reading fails).
    static func askSecret(_ prompt: String) throws -> String {
        guard inputIsTerminal else {
            throw ClientFailure(.badUsage, "no terminal to ask for the password on: pipe it in with --password-stdin")
        }
        var saved = termios()
        tcgetattr(STDIN_FILENO, &saved)
        var silent = saved
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent)
        FileHandle.standardError.write(Data("\(prompt): ".utf8))
        let line = readLine(strippingNewline: true)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
        FileHandle.standardError.write(Data("\n".utf8))
        guard let line else { throw ClientFailure(.badUsage, "no password given") }
        return line
    }

    /// The first line of standard input, for `--password-stdin` (so a password is never in argv).
    static func secretFromStandardInput() throws -> String {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else {
            throw ClientFailure(.badUsage, "--password-stdin: standard input gave no password")
        }
        return line
    }

    /// A new password and its confirmation: from standard input (used for both), or typed twice.
    static func newPassword(fromStandardInput: Bool, for what: String) throws -> (password: String, confirmation: String) {
        if fromStandardInput {
            let password = try secretFromStandardInput()
            return (password, password)
        }
        return (try askSecret("New password for \(what)"), try askSecret("Again"))
    }

    /// Asks before something that cannot be undone when a person is at the terminal; scripts
    /// (no terminal) are not asked.
    static func confirm(_ question: String, assumeYes: Bool) throws {
        guard !assumeYes, inputIsTerminal else { return }
        let answer = try ask("\(question) [y/N]").lowercased()
        guard answer == "y" || answer == "yes" else { throw ClientFailure(.failed, "not confirmed; nothing was changed") }
    }

    /// Columns aligned under their headers, two spaces apart.
    static func printTable(_ headers: [String], _ rows: [[String]]) {
        guard !rows.isEmpty else { return print("(none)") }
        let widths = headers.indices.map { column in
            ([headers[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0
        }
        for row in [headers] + rows {
            let cells = row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }
            print(cells.joined(separator: "  "))
        }
    }
}
