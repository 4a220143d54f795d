import ConsoleKit
import Fluent
import Vapor

/// `flotilla user add|passwd|list`: account administration from the shell, through the same
/// rules as the web pages and the API.
struct UserCommands: AsyncCommandGroup {
    let help = "Manage Flotilla users"
    var commands: [String: any AnyAsyncCommand] {
        ["add": AddUser(), "passwd": SetPassword(), "list": ListUsers()]
    }

    /// Reads a new password twice without echo, or once from standard input with `--password-stdin`.
    static func readPassword(_ context: CommandContext, fromStandardInput: Bool) -> (String, String) {
        if fromStandardInput {
            let password = readLine(strippingNewline: true) ?? ""
            return (password, password)
        }
        let password = context.console.ask("Password:", isSecure: true)
        let confirmation = context.console.ask("Confirm password:", isSecure: true)
        return (password, confirmation)
    }

    /// How changes made from the shell appear in the audit log.
    static let actor = AuditLog.Actor(name: "cli", ip: "local")

    struct AddUser: AsyncCommand {
        struct Signature: CommandSignature {
            @Argument(name: "username") var username: String
            @Option(name: "role", help: "system or ordinary (default ordinary)") var role: String?
            @Option(name: "email", help: "where notifications for the services the user owns go") var email: String?
            @Option(name: "full-name", help: "the user's full name") var fullName: String?
            @ConsoleKitCommands.Flag(name: "password-stdin", help: "read the password from standard input") var passwordStdin: Bool
        }

        let help = "Add a user"

        func run(using context: CommandContext, signature: Signature) async throws {
            let app = context.application
            let role = try UserRole(parsing: signature.role ?? "ordinary")
            let (password, confirmation) = UserCommands.readPassword(context, fromStandardInput: signature.passwordStdin)
            let user = try await app.users(actor: UserCommands.actor).create(
                username: signature.username, password: password, confirmation: confirmation, role: role, email: signature.email,
                fullName: signature.fullName)
            context.console.print("Added \(user.username) (\(role.title.lowercased())).")
        }
    }

    struct SetPassword: AsyncCommand {
        struct Signature: CommandSignature {
            @Argument(name: "username") var username: String
            @ConsoleKitCommands.Flag(name: "password-stdin", help: "read the password from standard input") var passwordStdin: Bool
        }

        let help = "Set a user's password"

        func run(using context: CommandContext, signature: Signature) async throws {
            let app = context.application
            let administration = app.users(actor: UserCommands.actor)
            guard let user = try await administration.find(username: signature.username) else {
                throw FlotillaError.notFound("no user named '\(signature.username)'")
            }
            let (password, confirmation) = UserCommands.readPassword(context, fromStandardInput: signature.passwordStdin)
            guard !password.isEmpty else { throw FlotillaError.validation("password is required") }
            try await administration.update(user, password: password, confirmation: confirmation, role: nil)
            context.console.print("Password of \(user.username) changed.")
        }
    }

    struct ListUsers: AsyncCommand {
        struct Signature: CommandSignature {
            @Option(name: "search", help: "only users whose name, full name or e-mail address contains this") var search: String?
        }

        let help = "List users: name, role, e-mail, full name, last sign-in (UTC), tab-separated"

        func run(using context: CommandContext, signature: Signature) async throws {
            let administration = context.application.users(actor: UserCommands.actor)
            var page = PageRequest(page: 1, per: PageRequest.sizes.last ?? 100)
            while true {
                let users = try await administration.list(page: page, search: signature.search)
                for user in users.items {
                    let lastSignIn = user.lastSignInAt.map(DisplayTime.iso) ?? "never"
                    context.console.print(
                        [user.username, user.role.rawValue, user.email ?? "-", user.fullName ?? "-", lastSignIn].joined(separator: "\t"))
                }
                guard page.page < users.pageCount else { return }
                page.page += 1
            }
        }
    }
}
