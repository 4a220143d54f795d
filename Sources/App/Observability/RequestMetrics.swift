import Vapor

/// Counts every request and times it, by method, route pattern and status, for `/metrics`.
/// Runs outermost, so it sees the status the client got (errors already rendered).
struct RequestMetrics: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let started = ContinuousClock.now
        let metrics = request.application.platformMetrics
        do {
            let response = try await next.respond(to: request)
            metrics.recordRequest(
                method: request.method.rawValue, route: Self.route(of: request), status: response.status.code,
                duration: ContinuousClock.now - started)
            return response
        } catch {
            let status = (error as? any AbortError)?.status ?? .internalServerError
            metrics.recordRequest(
                method: request.method.rawValue, route: Self.route(of: request), status: status.code,
                duration: ContinuousClock.now - started)
            throw error
        }
    }

    /// The matched route's pattern; requests no route matched (static files, unknown paths) share one label.
    static func route(of request: Request) -> String {
        guard let route = request.route else { return "(none)" }
        return "/" + route.path.string
    }
}
