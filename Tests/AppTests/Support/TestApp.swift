import Fluent
import FluentPostgresDriver
import Foundation
import SQLKit
import XCTVapor

@testable import App

/// Builds the real application for a test: SQLite in a fresh temporary data directory, or
/// the PostgreSQL database named by `FLOTILLA_TEST_DATABASE_URL` (emptied first).
enum TestApp {
    static let adminPassword = "admin-password-1"

    static var postgresURL: String? {
        ProcessInfo.processInfo.environment["FLOTILLA_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// - Parameter freshDatabase: false keeps what an earlier app left (a server restart).
    /// - Parameter outside: in-memory vSphere and guests for rule tests (live ones by default).
    /// - Parameter adjust: changes what is no setting (e.g. the database's waits, shortened).
    static func make(
        _ extra: [String: String] = [:], freshDatabase: Bool = true, outside: OutsideSystems = .live,
        beforeBoot: (Application) -> Void = { _ in }, adjust: (inout FlotillaConfig) -> Void = { _ in }
    ) async throws -> Application {
        let dataDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("flotilla-test-\(UUID().uuidString)").path
        var values = ["FLOTILLA_DATA_DIR": dataDirectory, "FLOTILLA_ADMIN_PASSWORD": adminPassword]
        if let postgresURL {
            values["FLOTILLA_DATABASE_URL"] = postgresURL
            if freshDatabase { try await resetPostgres(postgresURL) }
        }
        values.merge(extra) { _, new in new }
        var config = try FlotillaConfig(values: values)
        config.passwordHashCost = 4
        adjust(&config)
        let app = try await Application.make(.testing)
        // The application a test gets is the server (`flotilla serve`), not the test runner's arguments.
        app.environment.arguments = ["flotilla", "serve"]
        app.logger.logLevel = .warning
        try await configure(app, config: config, outside: outside)
        beforeBoot(app)
        try await app.asyncBoot()
        return app
    }

    /// Runs a test body against a fresh application and always shuts it down.
    static func run(
        _ extra: [String: String] = [:], outside: OutsideSystems = .live, beforeBoot: (Application) -> Void = { _ in },
        adjust: (inout FlotillaConfig) -> Void = { _ in }, _ body: (Application) async throws -> Void
    ) async throws {
        let app = try await make(extra, outside: outside, beforeBoot: beforeBoot, adjust: adjust)
        do {
            try await body(app)
        } catch {
            try await app.asyncShutdown()
            throw error
        }
        try await app.asyncShutdown()
    }

    /// Drops everything in the test database so every test starts from an empty schema.
    private static func resetPostgres(_ url: String) async throws {
        let app = try await Application.make(.testing)
        app.databases.use(try .postgres(url: url), as: .psql)
        do {
            let sql = try XCTUnwrap(app.db as? any SQLDatabase)
            try await sql.raw("DROP SCHEMA public CASCADE").run()
            try await sql.raw("CREATE SCHEMA public").run()
        } catch {
            try await app.asyncShutdown()
            throw error
        }
        try await app.asyncShutdown()
    }
}

/// A test client that keeps cookies like a browser and knows the CSRF token of its session.
final class TestClient: @unchecked Sendable {
    let app: Application
    let tester: any XCTApplicationTester
    private(set) var cookies: [String: String] = [:]
    var bearer: String?
    var forwardedFor: String?
    /// The session's CSRF token, as the page JavaScript reads it from the page; sent in the
    /// `X-CSRF-Token` header on state-changing API calls made with the cookie.
    var csrfHeader: String?
    /// False sends cookie-authenticated API calls without the header (a forged request).
    var sendsCSRFHeader = true

    init(_ app: Application, tester: (any XCTApplicationTester)? = nil) throws {
        self.app = app
        self.tester = try tester ?? app.testable()
    }

    @discardableResult
    func request(
        _ method: HTTPMethod, _ path: String, json: (any Encodable)? = nil, form: [(String, String)]? = nil,
        headers extra: HTTPHeaders = [:]
    ) async throws -> TestingHTTPResponse {
        var headers = extra
        if !cookies.isEmpty {
            headers.replaceOrAdd(name: .cookie, value: cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; "))
        }
        if let bearer { headers.bearerAuthorization = .init(token: bearer) }
        if let forwardedFor { headers.replaceOrAdd(name: .xForwardedFor, value: forwardedFor) }
        if sendsCSRFHeader, bearer == nil, path.hasPrefix("/api/"), ![.GET, .HEAD].contains(method), let csrfHeader,
            headers.first(name: "X-CSRF-Token") == nil
        {
            headers.replaceOrAdd(name: "X-CSRF-Token", value: csrfHeader)
        }
        var body = ByteBuffer()
        if let json {
            headers.contentType = .json
            body = ByteBuffer(data: try JSONEncoder().encode(json))
        } else if let form {
            headers.contentType = .urlEncodedForm
            body = ByteBuffer(string: WebPath.query(form))
        }
        let response = try await tester.performTest(
            request: TestingHTTPRequest(
                method: method, url: URI(string: path), headers: headers, body: body))
        if let token = response.headers.first(name: "X-CSRF-Token") { csrfHeader = token }
        for cookie in response.headers[.setCookie] {
            let pair = cookie.split(separator: ";")[0].split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { continue }
            if cookie.contains("Max-Age=0") || cookie.contains("expires=Thu, 01 Jan 1970") || pair[1].isEmpty {
                cookies[pair[0]] = nil
            } else {
                cookies[pair[0]] = pair[1]
            }
        }
        return response
    }

    /// Posts a web form with the session's CSRF token, as a browser page would.
    @discardableResult
    func submit(_ path: String, _ fields: [(String, String)] = []) async throws -> TestingHTTPResponse {
        try await request(.POST, path, form: fields + [("csrf", try await csrfToken())])
    }

    /// Reads the CSRF token from a page, the way a browser gets it.
    func csrfToken() async throws -> String {
        let page = try await request(.GET, cookies[SessionCookie.name] == nil ? "/login" : "/account")
        let html = page.body.string
        guard let range = html.range(of: #"name="csrf" value="([^"]+)""#, options: .regularExpression) else {
            XCTFail("no CSRF token on the page (status \(page.status))")
            return ""
        }
        let token = String(html[range].split(separator: "\"")[3])
        if cookies[SessionCookie.name] != nil { csrfHeader = token }
        return token
    }

    /// Signs in through the API (the session cookie is kept).
    func signIn(_ username: String, _ password: String) async throws {
        let response = try await request(.POST, "/api/v1/login", json: API.Credentials(username: username, password: password))
        XCTAssertEqual(response.status, .ok, "sign-in of \(username) failed: \(response.body.string)")
    }

    func decode<T: Decodable>(_ type: T.Type, _ response: TestingHTTPResponse) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(T.self, from: Data(buffer: response.body))
    }
}

extension TestingHTTPResponse {
    /// The `code` of an API error answer.
    var errorCode: String? {
        struct Body: Decodable {
            struct Detail: Decodable {
                var code: String
                var message: String
            }
            var error: Detail
        }
        return try? JSONDecoder().decode(Body.self, from: Data(buffer: body)).error.code
    }
}

extension XCTestCase {
    /// Creates a user through the API as the signed-in system administrator.
    func createUser(_ client: TestClient, _ username: String, role: UserRole, password: String = "password-123") async throws {
        let response = try await client.request(
            .POST, "/api/v1/users",
            json: API.NewUser(
                username: username, password: password, passwordConfirmation: password, role: role.rawValue))
        XCTAssertEqual(response.status, .created, response.body.string)
    }
}
