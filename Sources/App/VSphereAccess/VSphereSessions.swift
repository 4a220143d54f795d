import Fluent
import Foundation
import Logging
import VSphere

/// The live `VSphereProvider`: keeps one logged-in vSphere client per connection and reuses it
/// for every call (the client logs in again by itself if the server drops the session).
actor VSphereSessions: VSphereProvider {
    private let secrets: SecretBox
    private let logger: Logger
    /// One login per connection; concurrent callers share it while it is in flight.
    private var clients: [UUID: (fingerprint: String, login: Task<VSphereClient, any Error>)] = [:]

    init(secrets: SecretBox, logger: Logger) {
        self.secrets = secrets
        self.logger = logger
    }

    func endpoint(for connection: VSphereConnection) async throws -> any VSphereEndpoint {
        LiveVSphereEndpoint(client: try await client(for: connection))
    }

    func connect(_ login: VSphereLogin) async throws -> any VSphereEndpoint {
        LiveVSphereEndpoint(
            client: try await Self.connect(
                url: login.url, username: login.username, password: login.password,
                thumbprint: login.thumbprint, logger: logger))
    }

    private func client(for connection: VSphereConnection) async throws -> VSphereClient {
        let id = try connection.requireID()
        let fingerprint = [connection.url, connection.username, connection.passwordSealed, connection.thumbprint ?? ""].joined(
            separator: "\u{1}")
        if let cached = clients[id], cached.fingerprint == fingerprint {
            return try await cached.login.value
        }
        await forget(id)
        let password = try secrets.open(connection.passwordSealed)
        let login = Task { [logger] in
            try await Self.connect(
                url: connection.url, username: connection.username, password: password,
                thumbprint: connection.thumbprint, logger: logger)
        }
        clients[id] = (fingerprint, login)
        do {
            return try await login.value
        } catch {
            if clients[id]?.fingerprint == fingerprint { clients[id] = nil }
            throw error
        }
    }

    /// Drops a cached client, e.g. after the connection was edited or deleted.
    func forget(_ id: UUID) async {
        if let previous = clients.removeValue(forKey: id) {
            try? await previous.login.value.close()
        }
    }

    func closeAll() async {
        for id in clients.keys { await forget(id) }
    }

    private static func connect(
        url text: String, username: String, password: String, thumbprint: String?,
        logger: Logger
    ) async throws -> VSphereClient {
        guard let url = URL(string: text) else { throw FlotillaError.validation("the vSphere URL is not valid") }
        let trust: TrustPolicy = thumbprint.map { .pinnedSHA256($0) } ?? .system
        return try await VSphereClient.connect(
            url: url, username: username, password: password,
            trust: trust, timeout: .seconds(30), logger: logger)
    }
}
