import Fluent
import FluentPostgresDriver
import FluentSQLiteDriver
import Leaf
import RemoteShell
import Vapor

/// The session cookie's name, shared by the server and its documentation.
enum SessionCookie {
    static let name = "flotilla_session"
}

/// Builds the whole application from a configuration. `main` and the tests both call this,
/// so tests exercise exactly the application that runs.
public func configure(_ app: Application, config: FlotillaConfig) async throws {
    try await configure(app, config: config, outside: .live)
}

/// `configure(_:config:)` with a choice of the outside systems (tests pass in-memory ones).
func configure(_ app: Application, config: FlotillaConfig, outside: OutsideSystems) async throws {
    // Views and static files are found without the working directory (see ResourceDirectory).
    let resources = try ResourceDirectory.find(configured: config.resourcesDirectory)
    app.directory.viewsDirectory = resources.viewsDirectory
    app.directory.publicDirectory = resources.publicDirectory
    app.http.server.configuration.hostname = config.listenHost
    app.http.server.configuration.port = config.listenPort
    // `RequestMetrics` counts requests; Vapor's own per-request metrics would go nowhere.
    app.http.server.configuration.reportMetrics = false
    // No client sends a compressed body (the pages, flotctl, the agent): one handler fewer on
    // every request's way in (the dashboard summary's requests per second, issue 10).
    app.http.server.configuration.requestDecompression = .disabled
    app.routes.defaultMaxBodySize = "1mb"

    // 0700: sessions, password hashes and the audit log are no other local account's business.
    try FileManager.default.createDirectory(
        atPath: config.dataDirectory, withIntermediateDirectories: true,
        attributes: [.posixPermissions: 0o700])
    switch config.database {
    case .sqlite(let path):
        try SQLiteSetup.prepareFiles(dataDirectory: config.dataDirectory, databasePath: path)
        SQLiteSetup.use(app, path: path, config: config)
    case .postgres(let url):
        app.databases.use(try .postgres(url: url, maxConnectionsPerEventLoop: 4, sqlLogLevel: .trace), as: .psql)
    }
    app.instance = InstanceIdentity(config: config)
    let secrets = try SecretBox.load(base64Key: config.secretKey, keyFile: config.secretKeyFile)
    // Host keys are pinned per VM (`GuestLogin`, HostKeyCheck.expected), never per address, so
    // the pool's own store is never consulted.
    let shell = outside.shell ?? ShellPoolGuestShell(pool: ShellPool(hostKeyStore: InMemoryHostKeyStore(), logger: app.logger))
    let vsphere = outside.vsphere ?? VSphereSessions(secrets: secrets, logger: app.logger)
    let vmOperations = VMOperations(
        database: app.db, vsphere: vsphere, secrets: secrets, shell: shell,
        keys: PlatformKeys(database: app.db, secrets: secrets),
        guestBootTimeout: .seconds(config.guestBootTimeoutSeconds))
    app.flotilla = FlotillaContext(
        config: config, secrets: secrets,
        jobs: try JobEngine.make(for: app, config: config, operations: vmOperations),
        vsphere: vsphere, shell: shell, vmOperations: vmOperations)
    registerMigrations(app)

    app.passwords.use(.bcrypt(cost: config.passwordHashCost))
    app.sessions.use { _ in DatabaseSessions() }
    app.sessions.configuration = SessionsConfiguration(cookieName: SessionCookie.name) { id in
        HTTPCookies.Value(
            string: id.string, maxAge: config.sessionLifetimeHours * 3600, path: "/",
            isSecure: config.secureCookies ?? false, isHTTPOnly: true, sameSite: .lax)
    }

    app.views.use(.cachedLeaf)

    // Order matters: errors are rendered for everything inside; sessions and authentication
    // run before the permission guard, which runs before the CSRF check so that a denial is
    // reported as a denial. Kept answers are replayed in front of all of it (`KeptAnswers`).
    app.middleware = Middlewares()
    app.middleware.use(RequestMetrics(metrics: app.platformMetrics))
    app.middleware.use(app.useKeptAnswers())
    app.middleware.use(SecurityHeaders())
    app.middleware.use(ErrorRendering())
    app.middleware.use(FileMiddleware(publicDirectory: app.directory.publicDirectory))
    app.middleware.use(SecureCookiePolicy())
    app.useAuthenticationVerdicts()
    app.middleware.use(SessionLoader())
    app.middleware.use(app.sessions.middleware)
    app.middleware.use(SessionsReady())
    app.middleware.use(SessionAuthenticator())
    app.middleware.use(BearerTokenAuthenticator())
    app.middleware.use(PermissionGuard())
    app.middleware.use(CSRFGuard())

    try registerRoutes(app)
    registerCommands(app)
    app.lifecycle.use(StartupTasks())
    app.lifecycle.use(NotificationLifecycle())
    app.lifecycle.use(DashboardLifecycle())
    // After StartupTasks: joins once migrated, and leaves before jobs and vSphere sessions end.
    app.lifecycle.use(ClusterLifecycle())
    try InventorySync.register(on: app)
    try MetricsTasks.register(on: app)
    try AgentSilence.register(on: app)
    try AutoUpgradeScheduler.register(on: app)
    try MonitoringRetention.register(on: app)
    UpgradeSteps.register(on: app)
    try ConfigurationDrift.register(on: app)
}

func registerRoutes(_ app: Application) throws {
    SessionController.register(app)
    ServiceConfigurationController.register(app)
    DashboardController.register(app)
    VMPageController.register(app)
    UsersController.register(app)
    AccountController.register(app)
    LogsController.register(app)
    EnvironmentsController.register(app)
    AdoptionController.register(app)
    JobsController.register(app)
    SettingsController.register(app)
    SSHKeysController.register(app)
    InstancesController.register(app)
    BlueprintsController.register(app)
    NotificationsController.register(app)
    RoleMonitorController.register(app)
    UpgradesController.register(app)
    UpgradeHooksController.register(app)
    PrometheusEndpoint.register(app)

    let api = app.grouped("api", "v1")
    SessionAPI.register(api)
    UsersAPI.register(api)
    LogsAPI.register(api)
    TokensAPI.register(api)
    ConnectionsAPI.register(api)
    RolesAPI.register(api)
    EnvironmentsAPI.register(api)
    VMsAPI.register(api)
    DashboardAPI.register(api)
    BlueprintsAPI.register(api)
    JobsAPI.register(api)
    SSHKeysAPI.register(api)
    NotificationsAPI.register(api)
    InstancesAPI.register(api)
    MetricsAPI.register(api)
    AgentAPI.register(api)
    ServiceConfigurationAPI.register(api)
    UpgradesAPI.register(api)
    UpgradeHooksAPI.register(api)
    try OpenAPIDocument.register(api)
}

func registerCommands(_ app: Application) {
    app.asyncCommands.use(UserCommands(), as: "user")
    app.asyncCommands.use(LogCommands(), as: "logs")
    app.asyncCommands.use(LabCommands(), as: "lab")
    app.asyncCommands.use(KeyCommands(), as: "keys")
}

/// Migrates the database and creates the first administrator before any command runs
/// (except `migrate` itself, which asks before changing anything).
struct StartupTasks: LifecycleHandler {
    func willBootAsync(_ app: Application) async throws {
        try await SQLiteSetup.tune(app)
        guard app.environment.arguments.dropFirst().first != "migrate" else { return }
        try await app.autoMigrate()
        // The installation's own SSH key pair, made on first start (SPEC BEY-9).
        _ = try await PlatformKeys(database: app.db, secrets: app.flotilla.secrets).active()
        if let generated = try await app.users(actor: .system).createInitialAdministrator(
            password: app.flotilla.config.initialAdminPassword)
        {
            // Printed once on the console on purpose, never written to the log.
            print(
                """

                Created the first system administrator.
                  user name: admin
                  password:  \(generated)
                This password is shown only now; change it after signing in.

                """)
        }
    }

    /// A server runs job steps (taking over those whose instance stopped); a one-off command
    /// beside it (`flotilla user list`) leaves them alone.
    func didBootAsync(_ app: Application) async throws {
        guard app.startsServer else { return }
        await app.flotilla.jobs.start(owner: app.instance.id)
    }

    func shutdownAsync(_ app: Application) async {
        // Jobs first, while the database is there to take their leases back.
        await app.flotilla.jobs.stop()
        await app.flotilla.vsphere.closeAll()
        await app.flotilla.shell.shutdown()
    }
}

extension Application {
    /// Whether this process runs the server (`serve`, the default command, or `lab up`),
    /// rather than a one-off command such as `flotilla user list` beside a running server.
    var startsServer: Bool {
        let arguments = Array(environment.arguments.dropFirst())
        return arguments.isEmpty || arguments.first == "serve" || arguments.starts(with: ["lab", "up"])
    }
}
