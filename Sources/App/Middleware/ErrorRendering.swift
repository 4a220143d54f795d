import FluentSQLiteDriver
import Vapor

/// Turns every error into the answer its caller expects: `{"error":{"code","message"}}` for
/// the API, a page (or a redirect to sign-in) for the browser. Internal details never leak,
/// every 5xx is logged, and answering cannot fail: when even the error page cannot be made
/// (say its view is missing), the answer is a plain-text 500.
struct ErrorRendering: AsyncMiddleware {
    struct Body: Content {
        struct Detail: Content {
            var code: String
            var message: String
        }
        var error: Detail
    }

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        do {
            return try await next.respond(to: request)
        } catch {
            return await Self.answer(error, to: request)
        }
    }

    static func answer(_ error: any Error, to request: Request) async -> Response {
        let (status, code, message) = describe(error)
        if status.code >= 500 {
            request.logger.error("\(request.method) \(request.url.path) answered \(status.code): \(String(reflecting: error))")
        }
        do {
            if request.isAPIRequest {
                let response = Response(status: status)
                // Sorted keys: every error body reads the same byte for byte (an unknown upgrade
                // hook must answer exactly like an unknown path).
                let encoder = JSONEncoder()
                encoder.outputFormatting = .sortedKeys
                try response.content.encode(Body(error: .init(code: code, message: message)), using: encoder)
                return response
            }
            if status == .unauthorized, code == FlotillaError.Kind.unauthenticated.code {
                return request.redirect(to: WebPath.signIn(next: request.method == .GET ? request.url.string : nil))
            }
            let page = ErrorPage(
                chrome: PageChrome(request, title: "\(status.code) \(status.reasonPhrase)"),
                status: Int(status.code), message: message)
            let response = try await request.view.render("error", page).encodeResponse(for: request)
            response.status = status
            return response
        } catch {
            request.logger.critical("\(request.method) \(request.url.path): the error page could not be made: \(String(reflecting: error))")
            return plainServerError()
        }
    }

    /// The last resort, made without views or encoders.
    static func plainServerError() -> Response {
        var headers = HTTPHeaders()
        headers.contentType = .plainText
        return Response(
            status: .internalServerError, headers: headers,
            body: .init(string: "500 Internal Server Error: something went wrong on the server; the error was logged\n"))
    }

    static func describe(_ error: any Error) -> (HTTPResponseStatus, String, String) {
        switch error {
        case let error as FlotillaError:
            return (error.status, error.kind.code, error.message)
        case let error as DecodingError:
            return (.badRequest, FlotillaError.Kind.validation.code, Self.explain(error))
        case let error as any AbortError:
            let code =
                switch error.status {
                case .notFound: FlotillaError.Kind.notFound.code
                case .badRequest, .unprocessableEntity, .unsupportedMediaType, .payloadTooLarge: FlotillaError.Kind.validation.code
                case .unauthorized: FlotillaError.Kind.unauthenticated.code
                case .forbidden: FlotillaError.Kind.forbidden.code
                default: error.status.code >= 500 ? "internal" : "http_\(error.status.code)"
                }
            let status = error.status == .unprocessableEntity ? .badRequest : error.status
            return (status, code, error.status == .notFound ? "not found" : error.reason)
        case is ConnectionPoolTimeoutError:
            // Every connection of the request's event loop was busy past the wait (SQLite under
            // long writes): the server is fine and the request can be made again.
            return (.serviceUnavailable, FlotillaError.Kind.unavailable.code, Self.databaseBusy)
        case let error as SQLiteError where [.busy, .busyTimeout, .busyInRecovery, .busyInSnapshot].contains(error.reason):
            return (.serviceUnavailable, FlotillaError.Kind.unavailable.code, Self.databaseBusy)
        default:
            return (.internalServerError, "internal", "something went wrong on the server; the error was logged")
        }
    }

    private static let databaseBusy = "the database is busy; try again in a few seconds"

    private static func explain(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "\(parent.isEmpty ? "" : parent + ".")\(key.stringValue) is required"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(path(context)) has the wrong type"
        case .dataCorrupted(let context):
            return path(context).isEmpty ? "the request body is not valid JSON" : "\(path(context)) is not valid"
        @unknown default:
            return "the request body is not valid"
        }
    }
}

/// Marks the session cookie Secure when configured, or when the browser came over HTTPS.
struct SecureCookiePolicy: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let response = try await next.respond(to: request)
        let name = request.application.sessions.configuration.cookieName
        if var cookie = response.cookies[name],
            request.application.flotilla.config.secureCookies ?? request.arrivedOverHTTPS
        {
            cookie.isSecure = true
            response.cookies[name] = cookie
        }
        return response
    }
}
