import Vapor

/// `/api/v1/users` (SPEC USR-1..5, USR-7).
enum UsersAPI {
    static func register(_ api: any RoutesBuilder) {
        let users = api.grouped("users")
        users.get(use: list).requires(.viewUsers).keepingAnswers()
        users.post(use: create).requires(.addUser)
        users.post("me", "password", use: changeOwnPassword).requires(.changeOwnPassword)
        users.get(":id", use: show).requires(.viewUsers)
        users.patch(":id", use: update).requires(.editUser)
        users.delete(":id", use: delete).requires(.deleteUser)
    }

    @Sendable static func list(request: Request) async throws -> Response {
        let query = QueryParameters(request.url.query)
        let page = try await request.users.list(
            page: try PageRequest(page: query.first("page"), per: query.first("per")), search: query.first("q"))
        return ListResponse(try page.map(API.UserBody.init)).writtenResponse()
    }

    @Sendable static func show(request: Request) async throws -> API.UserBody {
        try API.UserBody(try await request.users.find(try userID(request)))
    }

    @Sendable static func create(request: Request) async throws -> Response {
        let body = try request.content.decode(API.NewUser.self)
        let user = try await request.users.create(
            username: body.username, password: body.password,
            confirmation: body.passwordConfirmation,
            role: try UserRole(parsing: body.role), email: body.email, fullName: body.fullName)
        return try await API.UserBody(user).encodeResponse(status: .created, for: request)
    }

    @Sendable static func update(request: Request) async throws -> API.UserBody {
        let user = try await request.users.find(try userID(request))
        let body = try request.content.decode(API.UserChanges.self)
        try await request.users.update(
            user, password: body.password, confirmation: body.passwordConfirmation,
            role: try body.role.map { try UserRole(parsing: $0) }, email: body.email, fullName: body.fullName)
        return try API.UserBody(user)
    }

    @Sendable static func delete(request: Request) async throws -> HTTPStatus {
        try await request.users.delete(try await request.users.find(try userID(request)))
        return .noContent
    }

    @Sendable static func changeOwnPassword(request: Request) async throws -> API.Done {
        let body = try request.content.decode(API.PasswordChange.self)
        try await request.users.changeOwnPassword(
            try request.user, current: body.currentPassword, new: body.password,
            confirmation: body.passwordConfirmation)
        return API.Done()
    }

    private static func userID(_ request: Request) throws -> UUID {
        guard let id = request.parameters.get("id", as: UUID.self) else { throw FlotillaError.notFound("no such user") }
        return id
    }
}

extension API.UserBody: JSONWritable {
    func write(to json: inout JSONWriter) {
        json.object { json in
            json.field("id", id)
            json.field("username", username)
            json.field("role", role.rawValue)
            json.field("email", email)
            json.field("fullName", fullName)
            json.field("createdAt", createdAt)
            json.field("lastSignInAt", lastSignInAt)
        }
    }
}
