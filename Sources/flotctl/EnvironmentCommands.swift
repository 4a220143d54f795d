import ArgumentParser

/// `flotctl env …`: environments, named by name or ID.
struct EnvironmentCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env", abstract: "List, show, add, delete and power environments.",
        subcommands: [List.self, Show.self, Add.self, Delete.self, Power.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List environments with their VM counts.")
        @OptionGroup var output: OutputOptions
        @OptionGroup var paging: PageOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let fetched = try await client.get(Shapes.Page<Shapes.EnvironmentRow>.self, "/environments", query: paging.query)
                if output.json { return Output.json(fetched.json) }
                Terminal.printTable(
                    ["NAME", "VMS", "DESCRIPTION"],
                    fetched.value.items.map { [$0.name, $0.vmCount.map(String.init) ?? "-", $0.description ?? ""] })
                paging.footer(fetched.value, noun: "environments")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an environment and its VMs.")
        @Argument(help: "Environment name or ID.") var environment: String
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let fetched = try await client.get(Shapes.Environment.self, "/environments/\(try await client.environmentID(environment))")
                if output.json { return Output.json(fetched.json) }
                let shown = fetched.value
                print("\(shown.name)  (\(shown.id))")
                if let description = shown.description, !description.isEmpty { print(description) }
                print("")
                Terminal.printTable(
                    ["HOST", "IP", "ROLE", "STATUS", "POWER"],
                    shown.vms.map { [$0.hostName, $0.ip, $0.role ?? "-", $0.status, $0.powerState ?? "-"] })
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add an empty environment.")
        @Argument(help: "Name: letters, digits, '-', '_' or '.'.") var name: String
        @Option(help: "What the environment is for.") var description: String?
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let fetched = try await client.post(
                    Shapes.Environment.self, "/environments", json: Shapes.EnvironmentInput(name: name, description: description))
                if output.json { return Output.json(fetched.json) }
                print("Added environment \(fetched.value.name) (\(fetched.value.id))")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an environment, destroying its VMs first (a job).")
        @Argument(help: "Environment name or ID.") var environment: String
        @Flag(help: "Do not ask for confirmation on a terminal.") var yes = false
        @OptionGroup var job: JobOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let id = try await client.environmentID(environment)
                try Terminal.confirm("Delete environment \(environment) and destroy all its VMs?", assumeYes: yes)
                let fetched = try await client.delete(Shapes.JobReference.self, "/environments/\(id)")
                try await job.started(fetched.value.jobID, answer: fetched, "Deleting environment \(environment)", client: client)
            }
        }
    }

    struct Power: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Power every VM of environments on, off or restart them (a job).")
        @Argument(help: "on, off or restart.") var action: PowerAction
        @Argument(help: "Environment names or IDs.") var environments: [String]
        @OptionGroup var job: JobOptions

        func validate() throws {
            guard !environments.isEmpty else { throw ValidationError("name at least one environment") }
        }

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                var ids: [String] = []
                for environment in environments { ids.append(try await client.environmentID(environment)) }
                let fetched = try await client.post(
                    Shapes.JobReference.self, "/environments/power", json: Shapes.PowerInput(action: action.rawValue, ids: ids))
                try await job.started(
                    fetched.value.jobID, answer: fetched, "Power \(action.rawValue): \(environments.joined(separator: ", "))",
                    client: client)
            }
        }
    }
}
