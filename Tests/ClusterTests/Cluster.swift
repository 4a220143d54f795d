import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import XCTest

/// Instances on one PostgreSQL behind nginx, started by `scripts/cluster` from the deploy/
/// files, and an HTTPS client that trusts the cluster's self-signed certificate.
final class Cluster: @unchecked Sendable {
    static let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    let folder: String
    let values: [String: String]
    let client: HTTPClient
    private var cookie: String?
    private var csrf: String?

    var nginx: String { values["NGINX_URL"] ?? "" }
    var databaseURL: String { values["DATABASE_URL"] ?? "" }
    func instance(_ number: Int) -> String { values["INSTANCE_\(number)"] ?? "" }

    /// Starts `count` instances with these extra `FLOTILLA_*` settings.
    init(instances count: Int, settings: [String: String] = [:]) throws {
        guard getuid() == 0 else {
            throw ClusterProblem("the cluster tests need root (nginx, PostgreSQL as `postgres`): run scripts/test")
        }
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("flotilla-cluster-\(UUID().uuidString)").path
        let output = try Self.script(["start", folder, String(count)], environment: settings)
        values = Dictionary(
            output.split(separator: "\n").compactMap { line -> (String, String)? in
                let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                return parts.count == 2 ? (parts[0], parts[1]) : nil
            }, uniquingKeysWith: { _, last in last })
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(values["CA_FILE"] ?? "")
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    }

    func stop() async {
        try? await client.shutdown()
        _ = try? Self.script(["stop", folder])
    }

    func kill(_ number: Int) throws { _ = try Self.script(["kill", folder, String(number)]) }
    func restart(_ number: Int) throws { _ = try Self.script(["restart", folder, String(number)]) }

    /// Which instance (1-based) has this advertised address.
    func number(of address: String) -> Int? {
        values.first { $0.key.hasPrefix("INSTANCE_") && $0.value == "http://\(address)" }.flatMap { Int($0.key.dropFirst(9)) }
    }

    struct Answer {
        var status: Int
        var body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(T.self, from: body)
        }
    }

    /// One request, through nginx unless `base` names an instance; signed-in calls carry the
    /// session cookie and its CSRF token.
    func request(_ method: HTTPMethod, _ path: String, json: [String: Any]? = nil, base: String? = nil) async throws -> Answer {
        var request = HTTPClientRequest(url: (base ?? nginx) + path)
        request.method = method
        if let cookie { request.headers.add(name: "Cookie", value: cookie) }
        if let csrf, method != .GET { request.headers.add(name: "X-CSRF-Token", value: csrf) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: json)))
        }
        let response = try await client.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 16 << 20)
        if let token = response.headers.first(name: "X-CSRF-Token") { csrf = token }
        for line in response.headers["Set-Cookie"] where line.hasPrefix("flotilla_session=") {
            cookie = String(line.split(separator: ";")[0])
        }
        return Answer(status: Int(response.status.code), body: Data(buffer: body))
    }

    func signIn() async throws {
        let answer = try await request(
            .POST, "/api/v1/login", json: ["username": "admin", "password": values["ADMIN_PASSWORD"] ?? ""])
        guard answer.status == 200 else { throw ClusterProblem("sign-in failed: \(answer.status) \(answer.text)") }
    }

    /// Runs SQL on the cluster's database (psql, tab-separated rows).
    func sql(_ statement: String) throws -> [[String]] {
        let psql = try Self.psql()
        let output = try Self.run(psql, ["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", databaseURL, "-c", statement])
        return output.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    }

    func count(_ statement: String) throws -> Int {
        guard let value = try sql(statement).first?.first, let number = Int(value) else {
            throw ClusterProblem("not a count: \(statement)")
        }
        return number
    }

    private static func psql() throws -> String {
        let candidates =
            ["/usr/bin/psql"]
            + ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).sorted().reversed()
            .map { "/usr/lib/postgresql/\($0)/bin/psql" }
        guard let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw ClusterProblem("psql not found (Debian package postgresql)")
        }
        return found
    }

    private static func script(_ arguments: [String], environment: [String: String] = [:]) throws -> String {
        try run(checkout + "/scripts/cluster", arguments, environment: environment)
    }

    @discardableResult
    static func run(_ program: String, _ arguments: [String], environment: [String: String] = [:]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ClusterProblem(
                "\(program) \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): "
                    + String(decoding: errorData, as: UTF8.self))
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// One instance as `GET /api/v1/instances` answers it (the fields the tests read).
struct InstanceRow: Decodable {
    var id: UUID
    var address: String
    var state: String
    var stepsRunning: Int
    var leads: [String]
}

struct ClusterProblem: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// vcsim's vCenter model from the project's launcher (`scripts/vcsim build`), on a free port.
final class Vcsim: @unchecked Sendable {
    static let username = "flotilla"
    static let password = "vcsim-pass-1"
    let process = Process()
    let url: String
    let thumbprint: String

    init(vms: Int = 1) throws {
        let binary = Cluster.checkout + "/.tools/vcsim"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw ClusterProblem("vcsim not built at \(binary): run `scripts/vcsim build`")
        }
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "-model", "vcenter", "-vms", String(vms), "-templates", "web", "-listen", "127.0.0.1:0",
            "-username", Self.username, "-password", Self.password,
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var text = ""
        let deadline = Date().addingTimeInterval(120)
        // The launcher prints the URL, then the thumbprint line, then flushes.
        while text.range(of: "VCSIM_THUMBPRINT_SHA256=[^\n]*\n", options: .regularExpression) == nil {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty, Date() < deadline else {
                process.terminate()
                throw ClusterProblem("vcsim did not start: \(text)")
            }
            text += String(decoding: chunk, as: UTF8.self)
        }
        func value(_ name: String) -> String {
            text.split(separator: "\n").first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) } ?? ""
        }
        url = value("VCSIM_URL")
        thumbprint = value("VCSIM_THUMBPRINT_SHA256")
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}
