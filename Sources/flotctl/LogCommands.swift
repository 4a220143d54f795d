import ArgumentParser

/// `flotctl logs …`: searching the audit log and backing it up on the server.
struct LogCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "Search the audit log and back it up.", subcommands: [Search.self, Backup.self])

    /// The search fields; they combine by intersection.
    struct Filters: ParsableArguments {
        @Option(help: "From this time: ISO 8601, or YYYY-MM-DDTHH:MM in the server's time zone.") var from: String?
        @Option(help: "Up to this time, written like --from.") var to: String?
        @Option(help: "Entry kind (login, operation, …); repeatable.") var kind: [String] = []
        @Option(help: "VM role; repeatable.") var role: [String] = []
        @Option(help: "Operator IP address.") var ip: String?

        var query: [(String, String)] {
            [("from", from), ("to", to), ("ip", ip)].compactMap { name, value in value.map { (name, $0) } }
                + kind.map { ("kind", $0) } + role.map { ("role", $0) }
        }
    }

    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Search the audit log, newest first.")
        @OptionGroup var filters: Filters
        @OptionGroup var output: OutputOptions
        @OptionGroup var paging: PageOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let fetched = try await client.get(Shapes.Page<Shapes.LogEntry>.self, "/logs", query: filters.query + paging.query)
                if output.json { return Output.json(fetched.json) }
                Terminal.printTable(
                    ["TIME (UTC)", "KIND", "OPERATOR", "IP", "VM", "ACTION", "RESULT", "DETAILS"],
                    fetched.value.items.map {
                        [
                            Output.time($0.time), $0.kind, $0.operator ?? "-", $0.operatorIP ?? "-", $0.vmName ?? "-", $0.action,
                            $0.result, $0.details,
                        ]
                    })
                paging.footer(fetched.value, noun: "entries")
            }
        }
    }

    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Back up the log (or a search of it) to a file in the server's backup folder.")
        @OptionGroup var filters: Filters
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let fetched = try await client.post(Shapes.Backup.self, "/logs/backup", query: filters.query)
                if output.json { return Output.json(fetched.json) }
                print("Backed up \(fetched.value.entries) entries to \(fetched.value.name) on the server")
            }
        }
    }
}
