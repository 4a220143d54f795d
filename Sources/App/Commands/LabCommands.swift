import ConsoleKit
import Fluent
import Lab
import Vapor

/// `flotilla lab up|down`: the development and demo lab — vcsim with one template per role,
/// a guest for every powered-on VM — and Flotilla serving with a connection to it.
struct LabCommands: AsyncCommandGroup {
    let help = "Run Flotilla against a simulated vSphere with real guests (needs root)"
    var commands: [String: any AnyAsyncCommand] { ["up": Up(), "down": Down()] }

    /// The services each lab role runs (lab/README.md), shown as the VM's services.
    static let services: [String: String] = [
        "redis": "sshd,redis-server", "mysql": "sshd,mysqld", "mongo": "sshd,mongod",
        "rabbitmq": "sshd,rabbitmq-server", "nfs": "sshd,rpcbind,nfsd",
    ]

    struct Up: AsyncCommand {
        struct Signature: CommandSignature {
            @Option(name: "vms", help: "powered-on VMs to create in vcsim at start, spread over the roles") var vms: Int?
        }

        let help = "Start vcsim and the lab guests, connect Flotilla to them, and serve"

        func run(using context: CommandContext, signature: Signature) async throws {
            let app = context.application
            let vms = signature.vms ?? 0
            guard (0...1000).contains(vms) else { throw FlotillaError.validation("--vms takes 0 to 1000") }
            let supervisor = LabSupervisor(configuration: LabConfiguration(preCreatedVMs: vms), logger: app.logger)
            try await supervisor.start()
            let following = Task { await supervisor.follow() }
            var adopting: Task<Void, Never>?
            do {
                guard let vcsim = await supervisor.vcsim else { throw FlotillaError(.unavailable, "the lab started no vcsim") }
                let connection = try await connect(app, to: vcsim)
                if vms > 0 {
                    // Adopted as their guests come up, so the first page is a live dashboard.
                    adopting = Task { await adoptPreCreatedVMs(app, on: connection) }
                }
                context.console.print(
                    """

                    Lab is up: vcsim at \(vcsim.url), guests on \(LabConfiguration.defaultNetwork) (gateway \(LabConfiguration().gateway)).
                    Flotilla: http://\(app.flotilla.config.listenHost):\(app.flotilla.config.listenPort)/  (sign in as admin)
                    Stop with Ctrl-C; `flotilla lab down` removes the guests and vcsim.

                    """)
                // Serve exactly as `flotilla serve` does, until Ctrl-C or SIGTERM.
                guard let serveCommand = app.asyncCommands.commands["serve"] else { throw FlotillaError(.unavailable, "no serve command") }
                var serve = CommandContext(console: context.console, input: CommandInput(arguments: ["flotilla"]))
                serve.application = app
                try await serveCommand.run(using: &serve)
                try await app.running?.onStop.get()
            } catch {
                adopting?.cancel()
                following.cancel()
                await supervisor.close()
                throw error
            }
            adopting?.cancel()
            await adopting?.value
            following.cancel()
            await following.value
            await supervisor.close()
        }

        /// The pre-created VMs into the environment `lab`, with the lab's demo password.
        private func adoptPreCreatedVMs(_ app: Application, on connection: VSphereConnection) async {
            let flotilla = app.flotilla
            let adoption = VSphereImport(
                database: app.db, secrets: flotilla.secrets, vsphere: flotilla.vsphere, shell: flotilla.shell, actor: .system,
                logger: app.logger)
            do {
                let count = try await adoption.adoptLabVMs(on: connection, into: "lab", password: LabConfiguration().demoPassword)
                app.logger.notice("lab: adopted \(count) pre-created VMs into the environment lab")
            } catch {
                app.logger.warning("lab: adopting the pre-created VMs stopped: \(FlotillaError.describe(error))")
            }
        }

        /// Points the `lab` connection at this vcsim (its port and certificate change each start)
        /// and makes a role per template.
        private func connect(_ app: Application, to vcsim: VcsimProcess) async throws -> VSphereConnection {
            let secrets = app.flotilla.secrets
            let connection = try await VSphereConnection.query(on: app.db).filter(\.$name == "lab").first() ?? VSphereConnection()
            connection.name = "lab"
            connection.url = vcsim.url
            connection.username = vcsim.username
            connection.passwordSealed = try secrets.seal(vcsim.password)
            connection.thumbprint = vcsim.thumbprint
            try await connection.save(on: app.db)
            await app.flotilla.vsphere.forget(try connection.requireID())
            let connections = Connections(
                database: app.db, secrets: secrets, vsphere: app.flotilla.vsphere, actor: .system, logger: app.logger)
            let roles = Roles(database: app.db, connections: connections, actor: .system, logger: app.logger)
            for role in LabConfiguration.defaultRoles where try await Role.query(on: app.db).filter(\.$name == role).count() == 0 {
                _ = try await roles.save(
                    Roles.Input(
                        name: role, connectionID: try connection.requireID(), template: "tpl-\(role)", sshUser: "root",
                        services: LabCommands.services[role] ?? "sshd"))
            }
            try await LabCommands.giveWebTheSampleApplication(app)
            return connection
        }
    }

    /// The `web` role deploys the sample web application from the lab's Git server (lab/sample-web),
    /// unless someone gave it another application.
    private static func giveWebTheSampleApplication(_ app: Application) async throws {
        guard let web = try await Role.query(on: app.db).filter(\.$name == "web").first(),
            try await UpgradeApplication.query(on: app.db).filter(\.$roleID == web.requireID()).count() == 0
        else { return }
        let applications = UpgradeApplications(database: app.db, secrets: app.flotilla.secrets, actor: .system, logger: app.logger)
        _ = try await applications.save(
            .init(
                repositoryKind: "git", repositoryURL: LabRepositories(configuration: LabConfiguration()).gitURL, branch: "main",
                deployDirectory: "/srv/web", restartCommand: "sh restart.sh", healthKind: "http",
                healthTarget: "http://127.0.0.1:8000/health", healthTimeoutSeconds: 15),
            roleID: try web.requireID())
    }

    struct Down: AsyncCommand {
        struct Signature: CommandSignature {}
        let help = "Remove every namespace, link, mount and process the lab made"

        func run(using context: CommandContext, signature: Signature) async throws {
            try await Lab.down(LabConfiguration())
            context.console.print("Lab removed.")
        }
    }
}
