import Vapor

/// Counts every request and times it, by method, route pattern and status, for `/metrics`.
/// Runs outermost, so it sees the status the client got (errors already rendered). Written
/// against futures rather than `async`, so that a replayed kept answer starts no task here.
struct RequestMetrics: Middleware {
    let metrics: PlatformMetrics

    func respond(to request: Request, chainingTo next: any Responder) -> EventLoopFuture<Response> {
        let started = ContinuousClock.now
        return next.respond(to: request).always { [metrics] result in
            let status: HTTPResponseStatus
            switch result {
            case .success(let response): status = response.status
            case .failure(let error): status = (error as? any AbortError)?.status ?? .internalServerError
            }
            metrics.recordRequest(
                method: request.method.rawValue, route: Self.route(of: request), status: status.code,
                duration: ContinuousClock.now - started)
        }
    }

    /// The matched route's pattern; requests no route matched (static files, unknown paths) share one label.
    static func route(of request: Request) -> String {
        guard let route = request.route else { return "(none)" }
        return "/" + route.path.string
    }
}
