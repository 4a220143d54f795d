import Vapor

/// Sign-in and sign-out pages.
enum SessionController {
    struct SignInPage: Encodable {
        var chrome: PageChrome
        var username: String
        var next: String
        var error: String?
    }

    struct SignInForm: Content {
        var username: String?
        var password: String?
        var next: String?
    }

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.signIn.pathComponents, use: show).requires(.signIn)
        routes.post(SiteURL.signIn.pathComponents, use: signIn).requires(.signIn)
        routes.post(SiteURL.signOut.pathComponents, use: signOut).requires(.signOut)
    }

    @Sendable static func show(request: Request) async throws -> Response {
        if request.auth.has(User.self) { return request.redirect(to: SiteURL.dashboard.relative) }
        let next = (try? request.query.get(String.self, at: "next")) ?? ""
        return try await render(request, username: "", next: next, error: nil, status: .ok)
    }

    @Sendable static func signIn(request: Request) async throws -> Response {
        let form = try request.content.decode(SignInForm.self)
        let username = form.username ?? ""
        do {
            let user = try await request.signIn.attempt(username: username, password: form.password ?? "", ip: request.operatorIP)
            try await request.startSession(for: user)
            return request.redirect(to: localPath(form.next) ?? SiteURL.dashboard.relative)
        } catch let error as FlotillaError {
            return try await render(
                request, username: String(username.prefix(64)), next: form.next ?? "",
                error: error.message, status: error.status == .tooManyRequests ? .tooManyRequests : .unauthorized)
        }
    }

    /// `next` when it is a path on this site, else nil (review finding 4): it goes into the
    /// `Location` header, so no scheme, no `//` or `/\` (other hosts to a browser), no
    /// backslash at all, and no control characters (header injection).
    static func localPath(_ next: String?) -> String? {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), next.utf8.count <= 2048, !next.contains("\\"),
            next.unicodeScalars.allSatisfy({ $0.properties.generalCategory != .control })
        else { return nil }
        return next
    }

    @Sendable static func signOut(request: Request) async throws -> Response {
        await request.audit(.login, action: "logout", result: .success, details: "signed out")
        request.endSession()
        return request.redirect(to: SiteURL.signIn.relative)
    }

    private static func render(
        _ request: Request, username: String, next: String, error: String?, status: HTTPResponseStatus
    ) async throws -> Response {
        let page = SignInPage(chrome: PageChrome(request, title: "Sign in"), username: username, next: next, error: error)
        let response = try await request.view.render("sign-in", page).encodeResponse(for: request)
        response.status = status
        return response
    }
}
