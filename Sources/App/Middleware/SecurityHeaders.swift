import Vapor

/// Headers on every response, errors included (review finding 2): no page may be framed
/// (clickjacking), no answer is content-sniffed into something else, and no full URL leaks
/// to other sites in `Referer`.
struct SecurityHeaders: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let response = try await next.respond(to: request)
        response.headers.replaceOrAdd(name: "X-Frame-Options", value: "DENY")
        response.headers.replaceOrAdd(name: "Content-Security-Policy", value: "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
        response.headers.replaceOrAdd(name: "X-Content-Type-Options", value: "nosniff")
        response.headers.replaceOrAdd(name: "Referrer-Policy", value: "same-origin")
        return response
    }
}
