import Vapor

/// The signed-in user's own page: password and personal API tokens (SPEC USR-4, BEY-3).
enum AccountController {
    struct TokenRow: Encodable {
        var name: String
        var created: String
        var lastUsed: String
        var expires: String
        var revokeURL: String
    }

    struct AccountPage: Encodable {
        var chrome: PageChrome
        var username: String
        var roleTitle: String
        var minimumLength: Int
        var tokens: [TokenRow]
        var newToken: String?
        var newTokenName: String?
        var passwordError: String?
        var tokenError: String?
    }

    struct PasswordForm: Content {
        var currentPassword: String?
        var password: String?
        var passwordConfirmation: String?
    }

    struct TokenForm: Content {
        var name: String?
        /// Blank: the token never expires.
        var expiresInDays: String?
    }

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.account.pathComponents, use: show).requires(.changeOwnPassword)
        routes.post(SiteURL.accountPassword.pathComponents, use: changePassword).requires(.changeOwnPassword)
        routes.post(SiteURL.accountTokens.pathComponents, use: createToken).requires(.manageOwnTokens)
        routes.post(SiteURL.accountTokenRevoke(id: nil).pathComponents, use: revokeToken).requires(.manageOwnTokens)
    }

    @Sendable static func show(request: Request) async throws -> Response {
        try await render(request)
    }

    @Sendable static func changePassword(request: Request) async throws -> Response {
        let form = try request.content.decode(PasswordForm.self)
        let user = try request.user
        do {
            try await request.users.changeOwnPassword(
                user, current: form.currentPassword ?? "", new: form.password ?? "",
                confirmation: form.passwordConfirmation ?? "")
        } catch let error as FlotillaError {
            return try await render(request, passwordError: error.message, status: error.status)
        }
        request.notice("Your password was changed.")
        return request.redirect(to: SiteURL.account.relative)
    }

    @Sendable static func createToken(request: Request) async throws -> Response {
        let form = try request.content.decode(TokenForm.self)
        do {
            let days = try form.expiresInDays.flatMap { $0.isEmpty ? nil : $0 }.map { text in
                guard let days = Int(text) else { throw FlotillaError.validation("days until the token expires must be a whole number") }
                return days
            }
            let (token, secret) = try await request.apiTokens.create(named: form.name ?? "", expiresInDays: days, for: try request.user)
            await request.audit(.operation, action: "token.create", result: .success, details: "created API token '\(token.name)'")
            return try await render(request, newToken: secret, newTokenName: token.name)
        } catch let error as FlotillaError {
            return try await render(request, tokenError: error.message, status: error.status)
        }
    }

    @Sendable static func revokeToken(request: Request) async throws -> Response {
        let token = try await request.revokeToken(try request.parameters.require("id", as: UUID.self), of: try request.user)
        request.notice("Token '\(token.name)' was revoked.")
        return request.redirect(to: SiteURL.account.relative)
    }

    private static func render(
        _ request: Request, newToken: String? = nil, newTokenName: String? = nil,
        passwordError: String? = nil, tokenError: String? = nil, status: HTTPResponseStatus = .ok
    ) async throws -> Response {
        let user = try request.user
        let display = DisplayTime(timeZone: request.application.flotilla.config.displayTimeZone)
        let tokens = try await request.apiTokens.list(for: user).map { token in
            TokenRow(token, display: display, revokeURL: SiteURL.accountTokenRevoke(id: try token.requireID()).relative)
        }
        let page = AccountPage(
            chrome: PageChrome(request, title: "My account"), username: user.username,
            roleTitle: user.role.title, minimumLength: request.application.flotilla.config.passwordMinimumLength,
            tokens: tokens, newToken: newToken, newTokenName: newTokenName,
            passwordError: passwordError, tokenError: tokenError)
        let response = try await request.view.render("account", page).encodeResponse(for: request)
        response.status = status
        response.headers.cacheControl = .init(noStore: true)
        return response
    }
}

extension AccountController.TokenRow {
    /// One token as the account page and a user's edit page show it.
    init(_ token: APIToken, display: DisplayTime, revokeURL: String) {
        self.init(
            name: token.name, created: token.createdAt.map(display.string) ?? "",
            lastUsed: token.lastUsedAt.map(display.string) ?? "never",
            expires: token.expiresAt.map(display.string) ?? "never", revokeURL: revokeURL)
    }
}
