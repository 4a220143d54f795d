import Vapor

/// The blueprint page: write or paste a blueprint, check it, deploy it (SPEC BEY-2); and
/// "Clone environment" from an environment's page.
enum BlueprintsController {
    struct Page: Encodable {
        var chrome: PageChrome
        var blueprint: String
        var planned: [PlannedRow]?
        var error: String?
    }

    struct PlannedRow: Encodable {
        var hostName: String
        var ip: String
        var role: String
    }

    static let example = """
        name: staging-4
        description: Staging for the spider team
        roles:
          web: 2
          redis: 1
        network:
          range: 10.77.20.10-10.77.20.60
          netmask: 255.255.0.0
          gateway: 10.77.0.1
          dns: [10.77.0.1]
        names: "{env}-{role}-{n}"
        password: shared
        """

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.blueprints.pathComponents, use: show).requires(.addEnvironment)
        routes.post(SiteURL.blueprintsCheck.pathComponents, use: check).requires(.addEnvironment)
        routes.post(SiteURL.blueprints.pathComponents, use: deploy).requires(.addEnvironment)
        routes.post(SiteURL.environmentClone(id: nil).pathComponents, use: clone).requires(.addEnvironment)
    }

    private static func render(
        _ request: Request, blueprint: String, planned: [PlannedRow]? = nil,
        error: String? = nil, status: HTTPResponseStatus = .ok
    ) async throws -> Response {
        let page = Page(chrome: PageChrome(request, title: "Deploy a blueprint"), blueprint: blueprint, planned: planned, error: error)
        let response = try await request.view.render("blueprints", page).encodeResponse(for: request)
        response.status = status
        return response
    }

    @Sendable static func show(request: Request) async throws -> Response {
        var text = example
        if let environmentID = request.query[UUID.self, at: "from"] {
            text = try await request.deployments.blueprint(of: environmentID).yaml()
        }
        return try await render(request, blueprint: text)
    }

    @Sendable static func check(request: Request) async throws -> Response {
        let text = QueryParameters(request.body.string).first("blueprint") ?? ""
        do {
            let planned = try await request.deployments.check(try Blueprint.parse(text))
            return try await render(
                request, blueprint: text,
                planned: planned.map { PlannedRow(hostName: $0.spec.hostName, ip: $0.spec.ip, role: $0.role) })
        } catch let error as FlotillaError {
            return try await render(request, blueprint: text, error: error.message, status: error.status)
        }
    }

    @Sendable static func deploy(request: Request) async throws -> Response {
        let query = QueryParameters(request.body.string)
        return try await deployAndRedirect(request, text: query.first("blueprint") ?? "", query: query)
    }

    @Sendable static func clone(request: Request) async throws -> Response {
        let id = try request.uuidParameter("environment")
        let query = QueryParameters(request.body.string)
        let blueprint = try await request.deployments.blueprint(of: id, name: query.first("name") ?? "", range: query.first("range") ?? "")
        return try await deployAndRedirect(request, text: try blueprint.yaml(), query: query)
    }

    /// Deploys the text and sends the browser to the job, or shows the page again with the error.
    private static func deployAndRedirect(_ request: Request, text: String, query: QueryParameters) async throws -> Response {
        do {
            let deployment = try await request.deployments.deploy(
                Deployments.Input(
                    blueprint: text, password: query.first("password"), passwordConfirmation: query.first("passwordConfirmation")))
            return request.redirect(to: SiteURL.job(id: deployment.jobID).relative)
        } catch let error as FlotillaError {
            return try await render(request, blueprint: text, error: error.message, status: error.status)
        }
    }
}
