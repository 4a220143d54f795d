import Fluent
import Vapor

/// Credentials for a private repository; sealed at rest and never shown back.
struct RepositoryCredentials: Codable, Sendable, Equatable {
    var username: String
    var password: String
}

/// Saving and reading a role's application (issue 12 §1).
struct UpgradeApplications {
    let database: any Database
    let secrets: SecretBox
    let actor: AuditLog.Actor
    let logger: Logger

    struct Input: Content {
        var repositoryKind: String
        var repositoryURL: String
        var branch: String?
        /// Nil keeps the stored credentials; empty username removes them.
        var username: String?
        var password: String?
        var deployDirectory: String
        var buildCommand: String?
        var restartCommand: String
        var healthKind: String
        var healthTarget: String?
        var healthTimeoutSeconds: Int?
        var releasesKept: Int?
    }

    /// What the API and pages show: everything but the credentials, of which only their presence.
    struct Summary: Content, Equatable {
        var id: UUID
        var roleID: UUID
        var roleName: String
        var repositoryKind: String
        var repositoryURL: String
        var branch: String?
        var hasCredentials: Bool
        var deployDirectory: String
        var buildCommand: String?
        var restartCommand: String
        var healthKind: String
        var healthTarget: String
        var healthTimeoutSeconds: Int
        var releasesKept: Int
    }

    func all() async throws -> [Summary] {
        let roles = try await Role.query(on: database).all()
        let names = Dictionary(uniqueKeysWithValues: roles.compactMap { role in role.id.map { ($0, role.name) } })
        return try await UpgradeApplication.query(on: database).all().map { try summary($0, roleName: names[$0.roleID] ?? "?") }
            .sorted { $0.roleName < $1.roleName }
    }

    func application(ofRole roleID: UUID) async throws -> UpgradeApplication? {
        try await UpgradeApplication.query(on: database).filter(\.$roleID == roleID).first()
    }

    func summary(_ application: UpgradeApplication, roleName: String) throws -> Summary {
        Summary(
            id: try application.requireID(), roleID: application.roleID, roleName: roleName,
            repositoryKind: application.repositoryKind, repositoryURL: application.repositoryURL, branch: application.branch,
            hasCredentials: application.credentialsSealed != nil, deployDirectory: application.deployDirectory,
            buildCommand: application.buildCommand, restartCommand: application.restartCommand, healthKind: application.healthKind,
            healthTarget: application.healthTarget, healthTimeoutSeconds: application.healthTimeoutSeconds,
            releasesKept: application.releasesKept)
    }

    /// Creates or replaces the role's application; nothing is stored unless every field is valid.
    func save(_ input: Input, roleID: UUID) async throws -> UpgradeApplication {
        guard let role = try await Role.find(roleID, on: database) else { throw FlotillaError.notFound("no such role") }
        guard let kind = RepositoryLocation.Kind(rawValue: input.repositoryKind) else {
            throw FlotillaError.validation("the repository kind is \"git\" or \"svn\"")
        }
        let location: RepositoryLocation
        do {
            location = try RepositoryLocation(kind: kind, url: input.repositoryURL.trimmingCharacters(in: .whitespaces))
        } catch let error as RepositoryError {
            throw FlotillaError.validation(error.description)
        }
        let branch = input.branch?.trimmingCharacters(in: .whitespaces).nilIfEmpty
        if let branch {
            guard kind == .git else { throw FlotillaError.validation("only a Git repository has a branch") }
            do { try RepositoryAccess.validate(branch, for: .git) } catch let error as RepositoryError {
                throw FlotillaError.validation("branch: \(error.description)")
            }
        }
        let directory = input.deployDirectory.trimmingCharacters(in: .whitespaces)
        guard directory.hasPrefix("/"), directory.count > 1, directory.count <= 255, !directory.hasSuffix("/"),
            !directory.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }),
            directory.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "/._-".contains($0)) })
        else {
            throw FlotillaError.validation("the deploy directory is an absolute path of letters, digits and / . _ - (e.g. /srv/app)")
        }
        guard !["/", "/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/root", "/sbin", "/sys", "/usr", "/var"].contains(directory) else {
            throw FlotillaError.validation("the deploy directory must be a directory of its own, not \(directory)")
        }
        let build = try Self.commandLine(input.buildCommand, field: "build command", required: false)
        let restart = try Self.commandLine(input.restartCommand, field: "restart command", required: true) ?? ""
        let health = try HealthCheck(kind: input.healthKind, target: input.healthTarget?.trimmingCharacters(in: .whitespaces) ?? "")
        let timeout = input.healthTimeoutSeconds ?? (health == .services ? 60 : 30)
        guard (5...600).contains(timeout) else { throw FlotillaError.validation("the health timeout is 5 to 600 seconds") }
        if health == .services, timeout <= Int(HealthCheck.servicesSteadySeconds) {
            throw FlotillaError.validation("with the services check the health timeout must exceed 30 seconds")
        }
        let kept = input.releasesKept ?? 5
        guard (2...50).contains(kept) else { throw FlotillaError.validation("releases kept is 2 to 50") }
        var sealed: String??
        if let username = input.username {
            let user = username.trimmingCharacters(in: .whitespaces)
            if user.isEmpty {
                sealed = .some(nil)
            } else {
                guard user.count <= 200, !UserValue.hasControlCharacters(user), let password = input.password, !password.isEmpty,
                    password.count <= 1000, !UserValue.hasControlCharacters(password)
                else { throw FlotillaError.validation("repository credentials need a user name and a password or token") }
                let json = try StepRegistry.encode(RepositoryCredentials(username: user, password: password))
                sealed = .some(try secrets.seal(json))
            }
        }

        let application = try await application(ofRole: roleID) ?? UpgradeApplication()
        let isNew = application.id == nil
        application.roleID = roleID
        application.repositoryKind = location.kind.rawValue
        application.repositoryURL = location.url
        application.branch = branch
        if let sealed { application.credentialsSealed = sealed }
        application.deployDirectory = directory
        application.buildCommand = build
        application.restartCommand = restart
        application.healthKind = input.healthKind
        application.healthTarget =
            switch health {
            case .http(let url): url
            case .command(let command): command
            case .services: ""
            }
        application.healthTimeoutSeconds = timeout
        application.releasesKept = kept
        try await application.save(on: database)
        await AuditLog.record(
            .operation, action: isNew ? "settings.application.add" : "settings.application.edit", result: .success,
            details: "role \(role.name): \(location.kind.rawValue) \(location.url) into \(directory)", vmRole: role.name, by: actor,
            on: database, logger: logger)
        return application
    }

    func delete(roleID: UUID) async throws {
        guard let application = try await application(ofRole: roleID) else { throw FlotillaError.notFound("the role has no application") }
        let role = try await Role.find(roleID, on: database)
        try await application.delete(on: database)
        await AuditLog.record(
            .operation, action: "settings.application.delete", result: .success, details: "removed role \(role?.name ?? "?")'s application",
            vmRole: role?.name, by: actor, on: database, logger: logger)
    }

    /// A one-line shell command of the application's (build, restart), or nil when optional and empty.
    private static func commandLine(_ text: String?, field: String, required: Bool) throws -> String? {
        let command = text?.trimmingCharacters(in: .whitespaces) ?? ""
        if command.isEmpty {
            if required { throw FlotillaError.validation("the \(field) is required") }
            return nil
        }
        guard command.count <= 1000, !UserValue.hasControlCharacters(command) else {
            throw FlotillaError.validation("the \(field) is one line of up to 1000 characters")
        }
        return command
    }
}

extension String {
    fileprivate var nilIfEmpty: String? { isEmpty ? nil : self }
}

extension Request {
    var upgradeApplications: UpgradeApplications {
        UpgradeApplications(database: db, secrets: application.flotilla.secrets, actor: auditActor, logger: logger)
    }
}
