import Crypto
import Vapor

/// `GET /metrics`: the platform's measurements in Prometheus' text format. Served only when
/// `FLOTILLA_METRICS_TOKEN` is set (otherwise 404), and only to `Authorization: Bearer <token>`.
enum PrometheusEndpoint {
    static func register(_ app: Application) {
        app.get("metrics", use: scrape).requires(.scrapePlatformMetrics)
    }

    @Sendable static func scrape(request: Request) async throws -> Response {
        guard let token = request.application.flotilla.config.metricsToken else {
            throw FlotillaError.notFound("not found")
        }
        guard let offered = request.headers.bearerAuthorization?.token, sameToken(offered, token) else {
            let response = Response(status: .unauthorized, body: .init(string: "a valid metrics token is required\n"))
            response.headers.replaceOrAdd(name: .wwwAuthenticate, value: "Bearer realm=\"flotilla metrics\"")
            return response
        }
        let application = request.application
        let text = try await application.platformMetrics.exposition(database: request.db, keptAnswers: application.keptAnswers.statistics)
        let response = Response(status: .ok, body: .init(string: text))
        response.headers.contentType = HTTPMediaType(type: "text", subType: "plain", parameters: ["version": "0.0.4", "charset": "utf-8"])
        return response
    }

    /// Compares digests, so the time taken says nothing about how much of the token matched.
    private static func sameToken(_ offered: String, _ expected: String) -> Bool {
        SHA256.hash(data: Data(offered.utf8)) == SHA256.hash(data: Data(expected.utf8))
    }
}
