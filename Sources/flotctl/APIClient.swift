import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// Calls to `/api/v1` of one server. Every answer that is not a success becomes a
/// `ClientFailure` carrying the server's own message.
struct APIClient: Sendable {
    enum Credential: Sendable {
        case none
        /// A personal API token (`Authorization: Bearer flt_…`).
        case token(String)
        /// A session made by signing in: its cookie, and the CSRF token its changes must send.
        case session(cookie: String, csrfToken: String)
    }

    /// A decoded answer with the JSON it came from, for `--json`.
    struct Fetched<Value: Decodable & Sendable>: Sendable {
        var value: Value
        var json: Data
    }

    struct Answer: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: Data
    }

    let server: URL
    let credential: Credential
    private let http: HTTPClient

    private static let maximumAnswerBytes = 64 * 1024 * 1024

    /// Runs `body` with a client for the stored login, and closes its connections afterwards.
    static func withStoredLogin<Result: Sendable>(_ body: (APIClient) async throws -> Result) async throws -> Result {
        let login = try LoginStore.load()
        return try await with(server: try serverURL(login.server), caFile: login.caFile, credential: .token(login.token), body)
    }

    static func with<Result: Sendable>(
        server: URL, caFile: String?, credential: Credential, _ body: (APIClient) async throws -> Result
    ) async throws -> Result {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(120))
        // A refused connection or an untrusted certificate is reported at once, not retried until the timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        if let caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            } catch {
                throw ClientFailure(.badUsage, "--ca-file \(caFile): not a readable PEM certificate file (\(error))")
            }
            configuration.tlsConfiguration = tls
        }
        return try await HTTPClient.withHTTPClient(configuration: configuration) { http in
            try await body(APIClient(server: server, credential: credential, http: http))
        }
    }

    /// The server's base URL as given to `login`: http or https with a host; a trailing slash is dropped.
    static func serverURL(_ text: String) throws -> URL {
        let trimmed = text.hasSuffix("/") ? String(text.dropLast()) : text
        guard let url = URL(string: trimmed), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
            url.host?.isEmpty == false, url.query == nil
        else {
            throw ClientFailure(.badUsage, "'\(text)' is not a server URL such as https://flotilla.example.com or http://127.0.0.1:8080")
        }
        return url
    }

    func with(credential: Credential) -> APIClient {
        APIClient(server: server, credential: credential, http: http)
    }

    func get<Value: Decodable & Sendable>(_ type: Value.Type, _ path: String, query: [(String, String)] = []) async throws -> Fetched<Value>
    {
        try decode(type, try await send(.GET, path, query: query))
    }

    func post<Value: Decodable & Sendable>(
        _ type: Value.Type, _ path: String, query: [(String, String)] = [], json body: (any Encodable & Sendable)? = nil
    ) async throws -> Fetched<Value> {
        try decode(type, try await send(.POST, path, query: query, json: body))
    }

    func patch<Value: Decodable & Sendable>(
        _ type: Value.Type, _ path: String, json body: any Encodable & Sendable
    ) async throws -> Fetched<Value> {
        try decode(type, try await send(.PATCH, path, json: body))
    }

    func delete<Value: Decodable & Sendable>(_ type: Value.Type, _ path: String) async throws -> Fetched<Value> {
        try decode(type, try await send(.DELETE, path))
    }

    /// Sends a request to `/api/v1` + `path`; an answer outside 2xx throws the server's message.
    @discardableResult
    func send(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], json body: (any Encodable & Sendable)? = nil
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: server.absoluteString + "/api/v1" + path + Self.queryString(query))
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "flotctl")
        switch credential {
        case .none: break
        case .token(let token): request.headers.add(name: "Authorization", value: "Bearer \(token)")
        case .session(let cookie, let csrfToken):
            request.headers.add(name: "Cookie", value: cookie)
            request.headers.add(name: "X-CSRF-Token", value: csrfToken)
        }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
        }
        let answer: Answer
        do {
            let response = try await http.execute(request, timeout: .seconds(120))
            let bytes = try await response.body.collect(upTo: Self.maximumAnswerBytes)
            answer = Answer(status: Int(response.status.code), headers: response.headers, body: Data(bytes.readableBytesView))
        } catch {
            throw ClientFailure(.failed, "cannot reach \(server.absoluteString): \(Self.describe(error))")
        }
        guard (200..<300).contains(answer.status) else {
            throw ClientFailure(status: answer.status, message: Self.message(of: answer))
        }
        return answer
    }

    private func decode<Value: Decodable & Sendable>(_ type: Value.Type, _ answer: Answer) throws -> Fetched<Value> {
        do {
            return Fetched(value: try JSONDecoder().decode(type, from: answer.body), json: answer.body)
        } catch {
            throw ClientFailure(
                .failed, "the server's answer is not what flotctl expects (\(error)); is it a Flotilla server of this version?")
        }
    }

    /// The server's `{"error":{"message":…}}`, else the start of what it sent, else the status.
    private static func message(of answer: Answer) -> String {
        struct ErrorBody: Decodable {
            struct Detail: Decodable { var message: String }
            var error: Detail
        }
        if let body = try? JSONDecoder().decode(ErrorBody.self, from: answer.body) { return body.error.message }
        let text = String(decoding: answer.body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "the server answered HTTP \(answer.status)" : "HTTP \(answer.status): \(text)"
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError, error == .remoteConnectionClosed { return "the server closed the connection" }
        if let error = error as? NIOSSLError { return "TLS failed (\(error)); for a private certificate authority give login --ca-file" }
        return String(describing: error)
    }

    /// `?a=1&b=2`, each part percent-encoded so `+`, `&` and spaces arrive as typed.
    private static func queryString(_ items: [(String, String)]) -> String {
        guard !items.isEmpty else { return "" }
        let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        let encode = { (text: String) in text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text }
        return "?" + items.map { "\(encode($0.0))=\(encode($0.1))" }.joined(separator: "&")
    }
}
