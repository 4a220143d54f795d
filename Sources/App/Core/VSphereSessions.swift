import Fluent
import Foundation
import Logging
import VSphere

/// Keeps one logged-in vSphere client per connection and reuses it for every call
/// (the client logs in again by itself if the server drops the session).
actor VSphereSessions {
    private let secrets: SecretBox
    private let logger: Logger
    /// One login per connection; concurrent callers share it while it is in flight.
    private var clients: [UUID: (fingerprint: String, login: Task<VSphereClient, any Error>)] = [:]

    init(secrets: SecretBox, logger: Logger) {
        self.secrets = secrets
        self.logger = logger
    }

    func client(for connection: VSphereConnection) async throws -> VSphereClient {
        let id = try connection.requireID()
        let fingerprint = [connection.url, connection.username, connection.passwordSealed, connection.thumbprint ?? ""].joined(separator: "\u{1}")
        if let cached = clients[id], cached.fingerprint == fingerprint {
            return try await cached.login.value
        }
        await forget(id)
        let password = try secrets.open(connection.passwordSealed)
        let login = Task { [logger] in try await Self.connect(connection, password: password, logger: logger) }
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

    static func connect(_ connection: VSphereConnection, password: String, logger: Logger) async throws -> VSphereClient {
        guard let url = URL(string: connection.url) else { throw FlotillaError.validation("the vSphere URL is not valid") }
        let trust: TrustPolicy = connection.thumbprint.map { .pinnedSHA256($0) } ?? .system
        return try await VSphereClient.connect(url: url, username: connection.username, password: password,
                                               trust: trust, timeout: .seconds(30), logger: logger)
    }
}
