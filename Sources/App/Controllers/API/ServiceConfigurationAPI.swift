import Fluent
import Vapor

/// `/api/v1/service-profiles`, `/api/v1/configuration-runs`, `/api/v1/configuration-drift`
/// (SPEC CFG-1..5): profiles with versions, and every step of the wizard.
enum ServiceConfigurationAPI {
    static func register(_ api: any RoutesBuilder) {
        api.get("service-profiles", use: list).requires(.viewServiceConfiguration)
        api.post("service-profiles", use: add).requires(.configureServices)
        api.get("service-profiles", ":id", use: show).requires(.viewServiceConfiguration)
        api.patch("service-profiles", ":id", use: edit).requires(.configureServices)
        api.delete("service-profiles", ":id", use: delete).requires(.configureServices)
        api.get("service-profiles", ":id", "versions", use: versions).requires(.viewServiceConfiguration)
        api.get("service-profiles", ":id", "versions", ":version", use: showVersion).requires(.viewServiceConfiguration)
        api.get("service-profiles", ":id", "options", use: options).requires(.viewServiceConfiguration)
        api.post("configuration-runs", use: begin).requires(.configureServices)
        api.get("configuration-runs", ":id", use: showRun).requires(.viewServiceConfiguration)
        api.post("configuration-runs", ":id", "check", use: check).requires(.configureServices)
        api.post("configuration-runs", ":id", "preview", use: preview).requires(.configureServices)
        api.post("configuration-runs", ":id", "configure", use: configure).requires(.configureServices)
        api.post("configuration-drift", use: drift).requires(.configureServices)
    }

    @Sendable static func list(request: Request) async throws -> [ServiceProfiles.Summary] {
        try await request.serviceProfiles.list()
    }

    @Sendable static func add(request: Request) async throws -> Response {
        let input = try request.content.decode(API.ProfileInput.self)
        guard let document = input.document else { throw FlotillaError.validation("document: give the profile's YAML") }
        let profiles = request.serviceProfiles
        let record = try await profiles.add(document: document, secretValues: input.secrets ?? [:])
        return try await profiles.summary(record).encodeResponse(status: .created, for: request)
    }

    @Sendable static func show(request: Request) async throws -> ServiceProfiles.Summary {
        let profiles = request.serviceProfiles
        return try await profiles.summary(try await profiles.find(try request.uuidParameter("profile")))
    }

    @Sendable static func edit(request: Request) async throws -> ServiceProfiles.Summary {
        let input = try request.content.decode(API.ProfileInput.self)
        let profiles = request.serviceProfiles
        let record = try await profiles.find(try request.uuidParameter("profile"))
        return try await profiles.summary(try await profiles.edit(record, document: input.document, secretValues: input.secrets ?? [:]))
    }

    @Sendable static func delete(request: Request) async throws -> HTTPStatus {
        let profiles = request.serviceProfiles
        try await profiles.delete(try await profiles.find(try request.uuidParameter("profile")))
        return .noContent
    }

    @Sendable static func versions(request: Request) async throws -> [ServiceProfiles.VersionSummary] {
        let profiles = request.serviceProfiles
        return try await profiles.versions(of: try await profiles.find(try request.uuidParameter("profile")))
    }

    @Sendable static func showVersion(request: Request) async throws -> ServiceProfiles.Summary {
        let profiles = request.serviceProfiles
        guard let version = request.parameters.get("version", as: Int.self) else { throw FlotillaError.notFound("no such version") }
        return try await profiles.summary(try await profiles.find(try request.uuidParameter("profile")), version: version)
    }

    @Sendable static func options(request: Request) async throws -> ConfigurationWizard.Options {
        guard let environment = try? request.query.get(UUID.self, at: "environment") else {
            throw FlotillaError.validation("environment: give the environment's ID (?environment=…)")
        }
        return try await request.configurationWizard.options(profileID: try request.uuidParameter("profile"), environmentID: environment)
    }

    @Sendable static func begin(request: Request) async throws -> Response {
        let input = try request.content.decode(API.NewConfigurationRun.self)
        let wizard = request.configurationWizard
        let run = try await wizard.begin(
            profileID: input.profileID, environmentID: input.environmentID, dependencies: input.dependencies)
        return try await wizard.body(run).encodeResponse(status: .created, for: request)
    }

    @Sendable static func showRun(request: Request) async throws -> ConfigurationWizard.RunBody {
        let wizard = request.configurationWizard
        return try await wizard.body(try await wizard.find(try request.uuidParameter("configuration run")))
    }

    @Sendable static func check(request: Request) async throws -> DependencyCheckReport {
        let input = try request.content.decode(API.ConfigurationTargets.self)
        let wizard = request.configurationWizard
        let run = try await wizard.find(try request.uuidParameter("configuration run"))
        return try await wizard.check(run, targets: input.targets, checks: request.dependencyChecks)
    }

    @Sendable static func preview(request: Request) async throws -> [ConfigurationWizard.VMPreview] {
        let input = try request.content.decode(API.ConfigurationTargets.self)
        let wizard = request.configurationWizard
        return try await wizard.preview(try await wizard.find(try request.uuidParameter("configuration run")), targets: input.targets)
    }

    @Sendable static func configure(request: Request) async throws -> Response {
        let input = try request.content.decode(API.ConfigurationTargets.self)
        let wizard = request.configurationWizard
        let jobID = try await wizard.configure(
            try await wizard.find(try request.uuidParameter("configuration run")), targets: input.targets)
        return try await API.JobReference.accepted(jobID, for: request)
    }

    @Sendable static func drift(request: Request) async throws -> [ConfigurationDrift.FileState] {
        let input = try request.content.decode(API.DriftRequest.self)
        return try await ConfigurationDrift(
            database: request.db, operations: request.application.flotilla.vmOperations, actor: request.auditActor, logger: request.logger
        ).check(environmentID: input.environmentID)
    }
}

extension API {
    /// A new profile (document required) or changes to one: a new text and/or secret values
    /// (an empty value keeps the stored one).
    struct ProfileInput: Content {
        var document: String?
        var secrets: [String: String]?
    }

    struct NewConfigurationRun: Content {
        var profileID: UUID
        var environmentID: UUID
        /// Dependency role → the chosen VM's ID.
        var dependencies: [String: UUID]
    }

    struct ConfigurationTargets: Content {
        var targets: [UUID]
    }

    struct DriftRequest: Content {
        var environmentID: UUID?
    }
}
