import Vapor

/// `/api/v1/blueprints`, and exporting or cloning an environment as a blueprint (SPEC BEY-2).
enum BlueprintsAPI {
    static func register(_ api: any RoutesBuilder) {
        api.post("blueprints", "check", use: check).requires(.addEnvironment)
        api.post("blueprints", "deploy", use: deploy).requires(.addEnvironment)
        api.get("environments", ":id", "blueprint", use: export).requires(.viewEnvironments)
        api.post("environments", ":id", "clone", use: clone).requires(.addEnvironment)
    }

    @Sendable static func check(request: Request) async throws -> [API.PlannedVM] {
        let blueprint = try Blueprint.parse(try request.content.decode(API.BlueprintText.self).blueprint)
        return try await request.deployments.check(blueprint).map(API.PlannedVM.init)
    }

    @Sendable static func deploy(request: Request) async throws -> Response {
        try await request.deployments.deploy(try request.content.decode(Deployments.Input.self)).encodeResponse(
            status: .accepted, for: request)
    }

    @Sendable static func export(request: Request) async throws -> API.BlueprintText {
        API.BlueprintText(blueprint: try await request.deployments.blueprint(of: try request.uuidParameter("environment")).yaml())
    }

    /// "Clone environment": a new environment shaped like this one, under a new name and address range.
    @Sendable static func clone(request: Request) async throws -> Response {
        let input = try request.content.decode(API.CloneInput.self)
        let blueprint = try await request.deployments.blueprint(
            of: try request.uuidParameter("environment"), name: input.name, range: input.range)
        let deployment = try await request.deployments.deploy(
            Deployments.Input(
                blueprint: try blueprint.yaml(), password: input.password, passwordConfirmation: input.passwordConfirmation))
        return try await deployment.encodeResponse(status: .accepted, for: request)
    }
}

extension API {
    struct BlueprintText: Content {
        var blueprint: String
    }

    /// One VM a blueprint would make (the check's answer, and the blueprint page's table).
    struct PlannedVM: Content {
        var hostName: String
        var ip: String
        var role: String

        init(_ planned: Blueprint.PlannedVM) {
            hostName = planned.spec.hostName
            ip = planned.spec.ip
            role = planned.role
        }
    }

    struct CloneInput: Content {
        var name: String
        var range: String
        var password: String?
        var passwordConfirmation: String?
    }
}
