import Vapor

/// `POST /api/v1/login` and `POST /api/v1/logout`.
enum SessionAPI {
    static func register(_ api: any RoutesBuilder) {
        api.post("login", use: login).requires(.signIn)
        api.post("logout", use: logout).requires(.signOut)
    }

    /// Takes JSON only: a cross-site page can post a form but not JSON without a CORS
    /// preflight, which Flotilla never grants, so no other site can sign a browser in (login
    /// CSRF). The answer's `X-CSRF-Token` header carries the token that the session's
    /// state-changing API calls must send back.
    @Sendable static func login(request: Request) async throws -> Response {
        guard request.headers.contentType == .json else {
            throw FlotillaError(.unsupportedMediaType, "send the credentials as JSON (Content-Type: application/json)")
        }
        let credentials = try request.content.decode(API.Credentials.self)
        let user = try await request.signIn.attempt(username: credentials.username, password: credentials.password, ip: request.operatorIP)
        try await request.startSession(for: user)
        let response = try await API.UserBody(user).encodeResponse(for: request)
        response.headers.replaceOrAdd(name: CSRFGuard.header, value: request.csrfToken)
        response.headers.cacheControl = .init(noStore: true)
        return response
    }

    @Sendable static func logout(request: Request) async throws -> API.Done {
        await request.audit(.login, action: "logout", result: .success, details: "signed out")
        request.endSession()
        return API.Done()
    }
}

extension FlotillaError.Kind {
    /// A body in an encoding the route does not take.
    static let unsupportedMediaType = FlotillaError.Kind(code: "unsupported_media_type", status: .unsupportedMediaType)
}
