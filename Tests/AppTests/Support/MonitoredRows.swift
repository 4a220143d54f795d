import Fluent
import Vapor

@testable import App

/// The rows a monitored VM stands on, written straight to the database for the agent tests: a
/// vSphere connection, a role whose guests run redis-server, an environment, and an ordinary
/// administrator with an email address to own the watched services.
struct MonitoredRows {
    let connection: VSphereConnection
    let role: Role
    let environment: App.Environment
    let owner: User

    static func create(
        on app: Application, role roleName: String, environment environmentName: String, owner ownerName: String
    )
        async throws -> MonitoredRows
    {
        let connection = VSphereConnection()
        connection.name = "lab"
        connection.url = "https://vcenter.example/sdk"
        connection.username = "user"
        connection.passwordSealed = try app.flotilla.secrets.seal("password")
        try await connection.create(on: app.db)
        let role = Role()
        role.name = roleName
        role.$connection.id = try connection.requireID()
        role.template = "tpl-\(roleName)"
        role.sshUser = "root"
        role.networkStyle = "ifupdown"
        role.services = "redis-server"
        try await role.create(on: app.db)
        let environment = App.Environment()
        environment.name = environmentName
        environment.description = ""
        try await environment.create(on: app.db)
        let owner = User()
        owner.username = ownerName
        owner.passwordHash = try Bcrypt.hash("owner-password-1", cost: 4)
        owner.role = .ordinary
        owner.email = "\(ownerName)@example.com"
        try await owner.create(on: app.db)
        return MonitoredRows(connection: connection, role: role, environment: environment, owner: owner)
    }

    /// A ready VM of the role in the environment.
    func addVM(on app: Application, hostName: String, ip: String) async throws -> VM {
        let vm = VM()
        vm.$environment.id = try environment.requireID()
        vm.$role.id = try role.requireID()
        vm.hostName = hostName
        vm.ip = ip
        vm.prefixLength = 16
        vm.gateway = "10.77.0.1"
        vm.passwordSealed = try app.flotilla.secrets.seal("Guest-pass-1")
        vm.status = .ready
        vm.notes = ""
        try await vm.create(on: app.db)
        return vm
    }
}
