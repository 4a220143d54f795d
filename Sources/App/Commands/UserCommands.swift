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
            @ConsoleKitCommands.Flag(name: "password-stdin", help: "read the password from standard input") var passwordStdin: Bool
        }

        let help = "Add a user"

        func run(using context: CommandContext, signature: Signature) async throws {
            let app = context.application
            let role = try UserRole(parsing: signature.role ?? "ordinary")
            let (password, confirmation) = UserCommands.readPassword(context, fromStandardInput: signature.passwordStdin)
            let user = try await app.users(actor: UserCommands.actor).create(
                username: signature.username, password: password, confirmation: confirmation, role: role)
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
        struct Signature: CommandSignature {}
        let help = "List users"

        func run(using context: CommandContext, signature: Signature) async throws {
            let users = try await User.query(on: context.application.db).sort(\.$username).all()
            for user in users {
                context.console.print("\(user.username)\t\(user.role.rawValue)")
            }
        }
    }
}
