import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import XCTest

#if canImport(Glibc)
import Glibc
#endif

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
    /// Stops PostgreSQL under the running instances (for the health check's 503).
    func stopDatabase() throws { try Self.run(Self.checkout + "/scripts/postgres", ["stop", folder + "/pg"]) }
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

    /// One request, through nginx unless `base` names an instance; after `signIn` it carries the
    /// session cookie and its CSRF token unless `anonymous` (a load balancer's health check).
    func request(
        _ method: HTTPMethod, _ path: String, json: [String: Any]? = nil, base: String? = nil, anonymous: Bool = false
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: (base ?? nginx) + path)
        request.method = method
        if let cookie, !anonymous { request.headers.add(name: "Cookie", value: cookie) }
        if let csrf, method != .GET, !anonymous { request.headers.add(name: "X-CSRF-Token", value: csrf) }
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

    /// The ID of the running process of instance `number` (it changes at every start).
    func instanceID(_ number: Int) throws -> String? {
        let address = instance(number).replacingOccurrences(of: "http://", with: "")
        return try sql(
            "SELECT id FROM instances WHERE address = '\(address)' AND stopped_at IS NULL ORDER BY started_at DESC LIMIT 1"
        ).first?.first
    }

    /// A connection to vcsim, a `web` role on its template and an environment `cluster`, made
    /// through nginx; answers the environment's ID.
    func addEnvironment(vcsim: Vcsim) async throws -> String {
        try await addEnvironment(vsphere: vcsim.url, username: Vcsim.username, password: Vcsim.password, thumbprint: vcsim.thumbprint)
    }

    func addEnvironment(vsphere url: String, username: String, password: String, thumbprint: String?) async throws -> String {
        var input = ["name": "vcsim", "url": url, "username": username, "password": password]
        input["thumbprint"] = thumbprint
        let connection = try await request(.POST, "/api/v1/connections", json: input)
        guard connection.status == 201, let connectionID = try connection.decode([String: AnyDecodable].self)["id"]?.text else {
            throw ClusterProblem("connection: \(connection.status) \(connection.text)")
        }
        let role = try await request(
            .POST, "/api/v1/roles", json: ["name": "web", "connectionID": connectionID, "template": "tpl-web", "sshUser": "root"])
        guard role.status == 201 else { throw ClusterProblem("role: \(role.status) \(role.text)") }
        let environment = try await request(.POST, "/api/v1/environments", json: ["name": "cluster", "description": "cluster tests"])
        guard environment.status == 201, let id = try environment.decode([String: AnyDecodable].self)["id"]?.text else {
            throw ClusterProblem("environment: \(environment.status) \(environment.text)")
        }
        return id
    }

    /// VM records of role `web` in `environment`: `values` are SQL rows (host name, address,
    /// vSphere reference).
    func insertVMs(values: String, environment: String, powerState: String? = nil) throws {
        _ = try sql(
            """
            INSERT INTO vms (id, environment_id, role_id, host_name, ip, prefix_length, gateway, password_sealed,
                             vsphere_ref, status, power_state, notes, created_at, updated_at)
            SELECT gen_random_uuid(), '\(environment)', (SELECT id FROM roles WHERE name = 'web'), v.name, v.ip, 8,
                   '127.0.0.1', 'unused', v.ref, 'ready', \(powerState.map { "'\($0)'" } ?? "NULL"), '', now(), now()
            FROM (VALUES \(values)) AS v(name, ip, ref)
            """)
    }

    /// Runs SQL on the cluster's database (psql, tab-separated rows: select no text with line
    /// breaks or tabs).
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

    /// Runs a program to its end, its output through files. Spawned and awaited here rather
    /// than with Foundation's `Process`, whose wait never returned for these scripts inside an
    /// async test; and files, not pipes, since a daemon it starts (nginx, PostgreSQL) would
    /// keep a pipe open long after the program has ended.
    @discardableResult
    static func run(_ program: String, _ arguments: [String], environment: [String: String] = [:]) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cluster-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outputFile = folder.appendingPathComponent("out").path
        let errorFile = folder.appendingPathComponent("err").path

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputFile, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errorFile, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let variables = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }.map { "\($0.key)=\($0.value)" }
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        let envp = variables.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, program, &actions, nil, argv, envp)
        guard spawned == 0 else { throw ClusterProblem("cannot start \(program): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw ClusterProblem("waiting for \(program): \(String(cString: strerror(errno)))") }
        }
        let text = (try? String(contentsOfFile: outputFile, encoding: .utf8)) ?? ""
        // Exited normally with 0: the low 7 bits are the terminating signal, the next 8 the code.
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            let errorText = (try? String(contentsOfFile: errorFile, encoding: .utf8)) ?? ""
            throw ClusterProblem("\(program) \(arguments.joined(separator: " ")) failed (status \(status)): \(errorText)")
        }
        return text
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

    init(vms: Int = 1, extraArguments: [String] = []) throws {
        let binary = Cluster.checkout + "/.tools/vcsim"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw ClusterProblem("vcsim not built at \(binary): run `scripts/vcsim build`")
        }
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments =
            [
                "-model", "vcenter", "-vms", String(vms), "-templates", "web", "-listen", "127.0.0.1:0",
                "-username", Self.username, "-password", Self.password,
            ] + extraArguments
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

    /// Name and managed object ID of every VM that is not a template, as pyvmomi sees them.
    func machines() throws -> [(name: String, reference: String)] {
        try Self.machines(url: url, username: Self.username, password: Self.password)
    }

    /// `python3` from the PATH: pyvmomi is installed for it (scripts/pip-packages.txt).
    static func machines(url: String, username: String, password: String) throws -> [(name: String, reference: String)] {
        struct Listing: Decodable {
            struct Machine: Decodable {
                var name: String
                var moref: String
                var template: Bool
            }
            var vms: [Machine]
        }
        let output = try Cluster.run(
            "/usr/bin/env",
            [
                "python3", Cluster.checkout + "/scripts/pyvmomi_probe.py", "--url", url, "--username", username, "--password", password,
                "list",
            ])
        let listing = try JSONDecoder().decode(Listing.self, from: Data(output.utf8))
        return listing.vms.filter { !$0.template }.map { ($0.name, $0.moref) }.sorted { $0.name < $1.name }
    }

    /// Ends vcsim and reaps it (see `Cluster.run` on why not `waitUntilExit`).
    func stop() {
        let pid = process.processIdentifier
        guard kill(pid, SIGTERM) == 0 else { return }
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }
}
