import Vapor

/// `POST /api/v1/login` and `POST /api/v1/logout`.
enum SessionAPI {
    static func register(_ api: any RoutesBuilder) {
        api.post("login", use: login).requires(.signIn)
        api.post("logout", use: logout).requires(.signOut)
    }

    @Sendable static func login(request: Request) async throws -> API.UserBody {
        let credentials = try request.content.decode(API.Credentials.self)
        let user = try await request.signIn.attempt(username: credentials.username, password: credentials.password, ip: request.operatorIP)
        try await request.startSession(for: user)
        return try API.UserBody(user)
    }

    @Sendable static func logout(request: Request) async throws -> API.Done {
        await request.audit(.login, action: "logout", result: .success, details: "signed out")
        request.endSession()
        return API.Done()
    }
}
