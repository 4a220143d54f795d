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
        await request.audit(
            .error, action: action.rawValue, result: .denied,
            details: "permission denied: \(request.method) \(request.url.path) needs a system administrator")
        throw FlotillaError(.forbidden, "\(user.role.title.lowercased())s may not do this (\(action.rawValue))")
    }
}

/// Requires the session's CSRF token on every state-changing request a browser could be
/// tricked into sending (review finding 2).
///
/// - Web forms send it as the `csrf` field (or the header).
/// - API calls authenticated by the session cookie send it in the `X-CSRF-Token` header; the
///   page script reads it from the `csrf-token` meta tag, API clients from the sign-in answer.
///   A plain HTML form cannot set a header, whatever its encoding.
/// - Bearer-token calls carry no cookie and need nothing.
/// - Anonymous visitors have no session (no row per visitor): the sign-in form's token is a
///   random value in a `SameSite=Strict` cookie, compared with the form field (double submit).
///   `POST /api/v1/login` takes only JSON, which a cross-site page cannot send without CORS.
/// - Whatever the token, a request the browser marks as coming from another site
///   (`Sec-Fetch-Site`) is refused, which also covers a same-site page planting cookies.
struct CSRFGuard: AsyncMiddleware {
    static let sessionKey = "csrf"
    static let formField = "csrf"
    static let header = "X-CSRF-Token"
    static let signInCookie = "flotilla_signin"

    static func newToken() -> String {
        [UInt8].random(count: 24).base64URLEncodedString()
    }

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let safe: [HTTPMethod] = [.GET, .HEAD, .OPTIONS]
        if !safe.contains(request.method), !request.isAuthenticatedByToken {
            try await check(request)
        }
        let response = try await next.respond(to: request)
        if let token = request.storage[NewSignInTokenKey.self] {
            let secure = request.application.flotilla.config.secureCookies ?? request.arrivedOverHTTPS
            response.cookies[Self.signInCookie] = HTTPCookies.Value(
                string: token, maxAge: 86_400, path: SiteURL.signIn.relative,
                isSecure: secure, isHTTPOnly: true, sameSite: .strict)
        }
        return response
    }

    private func check(_ request: Request) async throws {
        if let site = request.headers.first(name: "Sec-Fetch-Site")?.lowercased(), site == "cross-site" || site == "same-site" {
            try await refuse(request, "it came from another site")
        }
        let signedIn = request.auth.has(User.self)
        let expected: String?
        let sent: String?
        if request.isAPIRequest {
            // Only the sign-in is open to anonymous API calls, and it takes JSON alone.
            guard signedIn else { return }
            expected = request.session.data[Self.sessionKey]
            sent = request.headers.first(name: Self.header)
        } else {
            expected = signedIn ? request.session.data[Self.sessionKey] : request.cookies[Self.signInCookie]?.string
            sent = request.headers.first(name: Self.header) ?? (try? request.content.get(String.self, at: Self.formField))
        }
        guard let expected, let sent, Self.constantTimeEqual(expected, sent) else {
            try await refuse(
                request, request.isAPIRequest ? "the X-CSRF-Token header is missing or wrong" : "the form token is missing or wrong")
        }
    }

    private func refuse(_ request: Request, _ reason: String) async throws -> Never {
        if request.auth.has(User.self) {
            await request.audit(
                .error, action: "csrf", result: .denied, details: "refused \(request.method) \(request.url.path): \(reason)")
        }
        throw FlotillaError(
            .csrf,
            request.isAPIRequest
                ? "a state-changing call with the session cookie needs the session's token in the X-CSRF-Token header"
                : "the form has expired or did not come from Flotilla; reload the page and try again")
    }

    private static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8)
        let right = Array(b.utf8)
        guard left.count == right.count else { return false }
        return zip(left, right).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

private struct NewSignInTokenKey: StorageKey {
    typealias Value = String
}

extension Request {
    /// The CSRF token for this page's forms and scripts: the session's when signed in;
    /// otherwise the sign-in form's, kept in a cookie so anonymous visitors need no session.
    var csrfToken: String {
        // A bearer-token request has no session to keep one in and needs none (`CSRFGuard`):
        // storing one would start a session row for every token request to a page.
        if isAuthenticatedByToken { return "" }
        if auth.has(User.self) {
            if let token = session.data[CSRFGuard.sessionKey] { return token }
            let token = CSRFGuard.newToken()
            session.data[CSRFGuard.sessionKey] = token
            return token
        }
        if let token = storage[NewSignInTokenKey.self] ?? cookies[CSRFGuard.signInCookie]?.string, !token.isEmpty {
            return token
        }
        let token = CSRFGuard.newToken()
        storage[NewSignInTokenKey.self] = token
        return token
    }
}
