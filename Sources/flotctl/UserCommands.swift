import ArgumentParser

/// `flotctl users …`: Flotilla's users, named by user name or ID.
struct UserCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "List, add, edit and delete users.", subcommands: [List.self, Add.self, Edit.self, Delete.self])

    /// `system` administrators may do everything; `ordinary` ones what SPEC USR-6 lists.
    enum Role: String, CaseIterable, ExpressibleByArgument {
        case system, ordinary
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")
        @OptionGroup var output: OutputOptions
        @OptionGroup var paging: PageOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let fetched = try await client.get(Shapes.Page<Shapes.User>.self, "/users", query: paging.query)
                if output.json { return Output.json(fetched.json) }
                Terminal.printTable(
                    ["USER", "ROLE", "CREATED (UTC)"], fetched.value.items.map { [$0.username, $0.role, Output.time($0.createdAt)] })
                paging.footer(fetched.value, noun: "users")
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user.")
        @Argument(help: "User name.") var username: String
        @Option(help: "system or ordinary.") var role: Role
        @Flag(help: "Read the password from the first line of standard input.") var passwordStdin = false
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let (password, confirmation) = try Terminal.newPassword(fromStandardInput: passwordStdin, for: username)
            try await APIClient.withStoredLogin { client in
                let fetched = try await client.post(
                    Shapes.User.self, "/users",
                    json: Shapes.NewUser(username: username, password: password, passwordConfirmation: confirmation, role: role.rawValue))
                if output.json { return Output.json(fetched.json) }
                print("Added \(fetched.value.role) administrator \(fetched.value.username)")
            }
        }
    }

    struct Edit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a user's role or password (a new password ends their sessions).")
        @Argument(help: "User name or ID.") var user: String
        @Option(help: "New role: system or ordinary.") var role: Role?
        @Flag(help: "Set a new password, asked at the prompt.") var password = false
        @Flag(help: "Set a new password read from the first line of standard input.") var passwordStdin = false

        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard !(password && passwordStdin) else { throw ValidationError("give --password or --password-stdin, not both") }
            guard !(password && passwordStdin) else { throw ValidationError("give --password or --password-stdin, not both") }
            guard role != nil || password || passwordStdin else {
                throw ValidationError("nothing to change: give --role, --password or --password-stdin")
            }
        }

        func run() async throws {
            let newPassword = password || passwordStdin ? try Terminal.newPassword(fromStandardInput: passwordStdin, for: user) : nil
            try await APIClient.withStoredLogin { client in
                let changes = Shapes.UserChanges(
                    password: newPassword?.password, passwordConfirmation: newPassword?.confirmation, role: role?.rawValue)
                let fetched = try await client.patch(Shapes.User.self, "/users/\(try await client.userID(user))", json: changes)
                if output.json { return Output.json(fetched.json) }
                print("Changed \(fetched.value.username) (\(fetched.value.role))")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a user.")
        @Argument(help: "User name or ID.") var user: String
        @Flag(help: "Do not ask for confirmation on a terminal.") var yes = false

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let id = try await client.userID(user)
                try Terminal.confirm("Delete user \(user)?", assumeYes: yes)
                try await client.send(.DELETE, "/users/\(id)")
                print("Deleted user \(user)")
            }
        }
    }
}
