import ArgumentParser

/// `flotctl vm …`: single VMs, named by host name or ID. Passwords are typed at a prompt
/// without echo or piped in with --password-stdin, never given as arguments.
struct VMCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vm", abstract: "Add, show, power, delete VMs and change their password or network.",
        subcommands: [Add.self, Show.self, Power.self, Delete.self, Password.self, Network.self])

    /// The address settings `add` and `network` share.
    struct AddressOptions: ParsableArguments {
        @Option(help: "IPv4 address.") var ip: String
        @Option(help: "Prefix length (24) or dotted netmask (255.255.255.0).") var netmask: String
        @Option(help: "Gateway address.") var gateway: String
        @Option(help: "First DNS server.") var dns1: String?
        @Option(help: "Second DNS server.") var dns2: String?
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a VM to an environment: clone, configure the guest, wait until it answers (a job).")
        @Argument(help: "Environment name or ID.") var environment: String
        @Option(help: "Host name of the new VM.") var hostName: String
        @Option(help: "Role (which template and settings).") var role: String
        @OptionGroup var address: AddressOptions
        @Option(help: "Free text kept with the VM.") var notes: String?
        @Flag(help: "Read the guest password from the first line of standard input.") var passwordStdin = false
        @OptionGroup var job: JobOptions

        func run() async throws {
            let (password, confirmation) = try Terminal.newPassword(fromStandardInput: passwordStdin, for: hostName)
            try await APIClient.withStoredLogin { client in
                let input = Shapes.VMInput(
                    hostName: hostName, ip: address.ip, netmask: address.netmask, gateway: address.gateway, dns1: address.dns1,
                    dns2: address.dns2, role: role, password: password, passwordConfirmation: confirmation, notes: notes)
                let fetched = try await client.post(
                    Shapes.NewVM.self, "/environments/\(try await client.environmentID(environment))/vms", json: input)
                try await job.started(fetched.value.jobID, answer: fetched, "Adding VM \(hostName)", client: client)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a VM.")
        @Argument(help: "Host name or ID.") var vm: String
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let fetched = try await client.get(Shapes.VM.self, "/vms/\(try await client.vmID(vm))")
                if output.json { return Output.json(fetched.json) }
                let shown = fetched.value
                let rows: [(String, String?)] = [
                    ("host name", shown.hostName), ("id", shown.id), ("environment", shown.environmentID), ("role", shown.role),
                    ("address", shown.prefixLength.map { "\(shown.ip)/\($0)" } ?? shown.ip), ("gateway", shown.gateway),
                    ("dns", [shown.dns1, shown.dns2].compactMap { $0 }.joined(separator: ", ")),
                    ("status", shown.statusReason.map { "\(shown.status) (\($0))" } ?? shown.status), ("power", shown.powerState),
                    ("guest OS", shown.guestOS), ("CPUs", shown.cpus.map(String.init)), ("memory MB", shown.memoryMB.map(String.init)),
                    ("disk GB", shown.diskGB.map { String($0) }), ("notes", shown.notes),
                ]
                for (label, value) in rows {
                    guard let value, !value.isEmpty else { continue }
                    print(label.padding(toLength: 12, withPad: " ", startingAt: 0) + value)
                }
            }
        }
    }

    struct Power: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Power a VM on, off or restart it (a job).")
        @Argument(help: "on, off or restart.") var action: PowerAction
        @Argument(help: "Host name or ID.") var vm: String
        @OptionGroup var job: JobOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let fetched = try await client.post(
                    Shapes.JobReference.self, "/vms/\(try await client.vmID(vm))/power", json: Shapes.PowerInput(action: action.rawValue))
                try await job.started(fetched.value.jobID, answer: fetched, "Power \(action.rawValue) \(vm)", client: client)
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Destroy a VM and remove its record (a job).")
        @Argument(help: "Host name or ID.") var vm: String
        @Flag(help: "Do not ask for confirmation on a terminal.") var yes = false
        @OptionGroup var job: JobOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let id = try await client.vmID(vm)
                try Terminal.confirm("Destroy VM \(vm)?", assumeYes: yes)
                let fetched = try await client.delete(Shapes.JobReference.self, "/vms/\(id)")
                try await job.started(fetched.value.jobID, answer: fetched, "Deleting VM \(vm)", client: client)
            }
        }
    }

    struct Password: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a VM's password inside the guest (a job).")
        @Argument(help: "Host name or ID.") var vm: String
        @Flag(help: "Read the new password from the first line of standard input.") var passwordStdin = false
        @OptionGroup var job: JobOptions

        func run() async throws {
            let (password, confirmation) = try Terminal.newPassword(fromStandardInput: passwordStdin, for: vm)
            try await APIClient.withStoredLogin { client in
                let fetched = try await client.post(
                    Shapes.JobReference.self, "/vms/\(try await client.vmID(vm))/password",
                    json: Shapes.PasswordInput(password: password, passwordConfirmation: confirmation))
                try await job.started(fetched.value.jobID, answer: fetched, "Changing the password of \(vm)", client: client)
            }
        }
    }

    struct Network: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a VM's address inside the guest, rolled back if it does not answer (a job).")
        @Argument(help: "Host name or ID.") var vm: String
        @OptionGroup var address: AddressOptions
        @OptionGroup var job: JobOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let input = Shapes.NetworkInput(
                    ip: address.ip, netmask: address.netmask, gateway: address.gateway, dns1: address.dns1, dns2: address.dns2)
                let fetched = try await client.post(Shapes.JobReference.self, "/vms/\(try await client.vmID(vm))/network", json: input)
                try await job.started(fetched.value.jobID, answer: fetched, "Changing the network of \(vm)", client: client)
            }
        }
    }
}
