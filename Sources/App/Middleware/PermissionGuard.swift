import Vapor

/// Enforces the permission table (SPEC USR-6) on every route, web and API.
///
/// A route that declares no action is refused: forgetting a rule fails closed.
struct PermissionGuard: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        guard let route = request.route else {
            return try await next.respond(to: request)
        }
        guard let action = route.requiredAction else {
            request.logger.critical("route \(route.method) \(route.path.string) declares no permission; refused")
            throw FlotillaError(.forbidden, "this route has no permission rule")
        }
        let user = request.auth.get(User.self)
        if action.isAllowed(for: user?.role) {
            return try await next.respond(to: request)
        }
        guard let user else {
            throw FlotillaError(.unauthenticated, "sign in first")
        }
        await request.audit(.error, action: action.rawValue, result: .denied,
                            details: "permission denied: \(request.method) \(request.url.path) needs a system administrator")
        throw FlotillaError(.forbidden, "\(user.role.title.lowercased())s may not do this (\(action.rawValue))")
    }
}

/// Requires the session's CSRF token on every state-changing web form.
///
/// API requests are exempt: with a bearer token no cookie is involved, and with the session
/// cookie the browser sends it only from Flotilla's own pages (SameSite=Lax) and JSON bodies
/// cannot be posted cross-site without CORS, which Flotilla never grants.
struct CSRFGuard: AsyncMiddleware {
    static let sessionKey = "csrf"
    static let formField = "csrf"

    static func newToken() -> String {
        [UInt8].random(count: 24).base64URLEncodedString()
    }

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let safe: [HTTPMethod] = [.GET, .HEAD, .OPTIONS]
        if !safe.contains(request.method), !request.isAPIRequest {
            let expected = request.hasSession ? request.session.data[Self.sessionKey] : nil
            let sent = request.headers.first(name: "X-CSRF-Token") ?? (try? request.content.get(String.self, at: Self.formField))
            guard let expected, let sent, Self.constantTimeEqual(expected, sent) else {
                throw FlotillaError(.csrf, "the form has expired or did not come from Flotilla; reload the page and try again")
            }
        }
        return try await next.respond(to: request)
    }

    private static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8), right = Array(b.utf8)
        guard left.count == right.count else { return false }
        return zip(left, right).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

extension Request {
    /// The session's CSRF token for forms, created on first use.
    var csrfToken: String {
        if let token = session.data[CSRFGuard.sessionKey] { return token }
        let token = CSRFGuard.newToken()
        session.data[CSRFGuard.sessionKey] = token
        return token
    }
}
