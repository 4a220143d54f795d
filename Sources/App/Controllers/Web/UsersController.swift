import Vapor

/// The user pages (SPEC USR-1..5, USR-7).
enum UsersController {
    struct UserRow: Encodable {
        var id: String
        var username: String
        var fullName: String
        var email: String
        var roleTitle: String
        var created: String
        var lastSignIn: String
        var editURL: String
        var deleteURL: String
        var isSelf: Bool
    }

    struct ListPage: Encodable {
        var chrome: PageChrome
        var users: [UserRow]
        var pagination: PaginationView
        var canManage: Bool
        var newURL: String
        var search: String
        /// Leaf counts an empty string as true, so the page asks this instead.
        var isSearching: Bool
    }

    struct RoleOption: Encodable {
        var value: String
        var title: String
        var selected: Bool
    }

    struct FormPage: Encodable {
        var chrome: PageChrome
        var isNew: Bool
        var action: String
        var username: String
        var email: String
        var fullName: String
        var roles: [RoleOption]
        var minimumLength: Int
        var error: String?
        /// The user's API tokens (editing only), which a system administrator may revoke.
        var tokens: [AccountController.TokenRow]
    }

    struct DeletePage: Encodable {
        var chrome: PageChrome
        var username: String
        var action: String
    }

    struct UserForm: Content {
        var username: String?
        var password: String?
        var passwordConfirmation: String?
        var role: String?
        var email: String?
        var fullName: String?
    }

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.users.pathComponents, use: list).requires(.viewUsers)
        routes.get(SiteURL.usersNew.pathComponents, use: new).requires(.addUser)
        routes.post(SiteURL.users.pathComponents, use: create).requires(.addUser)
        routes.get(SiteURL.userEdit(id: nil).pathComponents, use: edit).requires(.editUser)
        routes.post(SiteURL.user(id: nil).pathComponents, use: update).requires(.editUser)
        routes.get(SiteURL.userDelete(id: nil).pathComponents, use: confirmDelete).requires(.deleteUser)
        routes.post(SiteURL.userDelete(id: nil).pathComponents, use: delete).requires(.deleteUser)
        routes.post(SiteURL.userTokenRevoke(user: nil, token: nil).pathComponents, use: revokeToken).requires(.manageUserTokens)
    }

    @Sendable static func list(request: Request) async throws -> View {
        let pageRequest = try PageRequest(page: request.query[String.self, at: "page"], per: request.query[String.self, at: "per"])
        let search = String((request.query[String.self, at: "q"] ?? "").prefix(UserAdministration.maximumFullNameLength))
        let page = try await request.users.list(page: pageRequest, search: search)
        let me = try request.user
        let display = DisplayTime(timeZone: request.application.flotilla.config.displayTimeZone)
        let rows = try page.items.map { user in
            let id = try user.requireID()
            return UserRow(
                id: id.uuidString, username: user.username, fullName: user.fullName ?? "", email: user.email ?? "",
                roleTitle: user.role.title, created: user.createdAt.map(display.string) ?? "",
                lastSignIn: user.lastSignInAt.map(display.string) ?? "never", editURL: SiteURL.userEdit(id: id).relative,
                deleteURL: SiteURL.userDelete(id: id).relative, isSelf: id == me.id)
        }
        return try await request.view.render(
            "users",
            ListPage(
                chrome: PageChrome(request, title: "Users"), users: rows,
                pagination: PaginationView(page, path: SiteURL.users.relative, query: search.isEmpty ? [] : [("q", search)]),
                canManage: me.isSystemAdministrator, newURL: SiteURL.usersNew.relative, search: search,
                isSearching: !search.isEmpty))
    }

    @Sendable static func new(request: Request) async throws -> Response {
        try await renderForm(request, user: nil, form: UserForm(), role: .ordinary, error: nil, status: .ok)
    }

    @Sendable static func create(request: Request) async throws -> Response {
        let form = try request.content.decode(UserForm.self)
        let username = form.username ?? ""
        do {
            let role = try UserRole(parsing: form.role)
            let user = try await request.users.create(
                username: username, password: form.password ?? "",
                confirmation: form.passwordConfirmation ?? "", role: role, email: form.email, fullName: form.fullName)
            request.notice("User '\(user.username)' was added.")
            return request.redirect(to: SiteURL.users.relative)
        } catch let error as FlotillaError {
            return try await renderForm(
                request, user: nil, form: form, role: UserRole(rawValue: form.role ?? "") ?? .ordinary, error: error.message,
                status: error.status)
        }
    }

    @Sendable static func edit(request: Request) async throws -> Response {
        let user = try await request.users.find(try request.parameters.require("id", as: UUID.self))
        return try await renderForm(
            request, user: user, form: UserForm(email: user.email, fullName: user.fullName), role: user.role, error: nil, status: .ok)
    }

    @Sendable static func update(request: Request) async throws -> Response {
        let user = try await request.users.find(try request.parameters.require("id", as: UUID.self))
        let form = try request.content.decode(UserForm.self)
        do {
            try await request.users.update(
                user, password: form.password, confirmation: form.passwordConfirmation,
                role: try UserRole(parsing: form.role), email: form.email ?? "", fullName: form.fullName ?? "")
            request.notice("User '\(user.username)' was saved.")
            return request.redirect(to: SiteURL.users.relative)
        } catch let error as FlotillaError {
            return try await renderForm(request, user: user, form: form, role: user.role, error: error.message, status: error.status)
        }
    }

    @Sendable static func confirmDelete(request: Request) async throws -> View {
        let user = try await request.users.find(try request.parameters.require("id", as: UUID.self))
        return try await request.view.render(
            "user-delete",
            DeletePage(
                chrome: PageChrome(request, title: "Delete user"), username: user.username,
                action: SiteURL.userDelete(id: try user.requireID()).relative))
    }

    @Sendable static func delete(request: Request) async throws -> Response {
        let user = try await request.users.find(try request.parameters.require("id", as: UUID.self))
        try await request.users.delete(user)
        if user.id == request.auth.get(User.self)?.id {
            request.endSession()
            return request.redirect(to: SiteURL.signIn.relative)
        }
        request.notice("User '\(user.username)' was deleted.")
        return request.redirect(to: SiteURL.users.relative)
    }

    @Sendable static func revokeToken(request: Request) async throws -> Response {
        let user = try await request.users.find(try request.parameters.require("id", as: UUID.self))
        let token = try await request.revokeToken(try request.parameters.require("tokenID", as: UUID.self), of: user)
        request.notice("Token '\(token.name)' of '\(user.username)' was revoked.")
        return request.redirect(to: SiteURL.userEdit(id: try user.requireID()).relative)
    }

    private static func renderForm(
        _ request: Request, user: User?, form: UserForm, role: UserRole,
        error: String?, status: HTTPResponseStatus
    ) async throws -> Response {
        let action = try user.map { SiteURL.user(id: try $0.requireID()).relative } ?? SiteURL.users.relative
        let display = DisplayTime(timeZone: request.application.flotilla.config.displayTimeZone)
        var tokens: [AccountController.TokenRow] = []
        if let user {
            tokens = try await request.apiTokens.list(for: user).map { token in
                AccountController.TokenRow(
                    token, display: display,
                    revokeURL: SiteURL.userTokenRevoke(
                        user: try user.requireID(), token: try token.requireID()
                    ).relative)
            }
        }
        let page = FormPage(
            chrome: PageChrome(request, title: user == nil ? "Add user" : "Edit user"), isNew: user == nil, action: action,
            username: user?.username ?? String((form.username ?? "").prefix(UserAdministration.maximumUsernameLength)),
            email: String((form.email ?? "").prefix(254)),
            fullName: String((form.fullName ?? "").prefix(UserAdministration.maximumFullNameLength)),
            roles: UserRole.allCases.map { RoleOption(value: $0.rawValue, title: $0.title, selected: $0 == role) },
            minimumLength: request.application.flotilla.config.passwordMinimumLength, error: error, tokens: tokens)
        let response = try await request.view.render("user-form", page).encodeResponse(for: request)
        response.status = status
        return response
    }
}
