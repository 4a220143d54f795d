import Fluent
import VSphere
import Vapor

/// vSphere connections (SPEC "Settings"): validated, tested by logging in, stored with the
/// password sealed.
struct Connections {
    let database: any Database
    let secrets: SecretBox
    let vsphere: any VSphereProvider
    let actor: AuditLog.Actor
    let logger: Logger

    struct Input: Content {
        var name: String
        var url: String
        var username: String
        var password: String
        var thumbprint: String?
        var datacenter: String?
        var vmFolder: String?
        var resourcePool: String?
        var datastore: String?
        var network: String?
    }

    /// What a connection test saw (SPEC: show `about`, datacenters and templates).
    struct Report: Content {
        var product: String
        var apiType: String
        var apiVersion: String
        var datacenters: [String]
        var templates: [String]
    }

    func validate(_ input: Input) throws -> Input {
        var input = input
        input.name = input.name.trimmingCharacters(in: .whitespaces)
        guard !input.name.isEmpty, input.name.count <= 64 else { throw FlotillaError.validation("connection name has 1 to 64 characters") }
        guard let url = URL(string: input.url), let scheme = url.scheme?.lowercased(), ["https", "http"].contains(scheme), url.host != nil
        else {
            throw FlotillaError.validation("URL must be http(s)://host[:port]/sdk")
        }
        guard !input.username.isEmpty, !input.password.isEmpty else {
            throw FlotillaError.validation("user name and password are required")
        }
        if let thumbprint = input.thumbprint?.trimmingCharacters(in: .whitespaces), !thumbprint.isEmpty {
            let hex = thumbprint.replacingOccurrences(of: ":", with: "")
            guard hex.count == 64, hex.allSatisfy(\.isHexDigit) else {
                throw FlotillaError.validation("thumbprint must be a SHA-256 certificate fingerprint (64 hex digits, colons allowed)")
            }
            // Plain HTTP has no certificate: a thumbprint there would pin nothing while looking pinned.
            guard scheme == "https" else {
                throw FlotillaError.validation("a thumbprint pins an HTTPS certificate: use an https:// URL, or leave the thumbprint empty")
            }
            input.thumbprint = thumbprint
        } else {
            input.thumbprint = nil
        }
        for keyPath in [\Input.datacenter, \.vmFolder, \.resourcePool, \.datastore, \.network] {
            let value = input[keyPath: keyPath]?.trimmingCharacters(in: .whitespaces)
            input[keyPath: keyPath] = value?.isEmpty == false ? value : nil
        }
        return input
    }

    /// Logs in with the given settings and reports what the server shows.
    func test(_ input: Input) async throws -> Report {
        let input = try validate(input)
        let endpoint: any VSphereEndpoint
        do {
            endpoint = try await vsphere.connect(
                VSphereLogin(
                    url: input.url, username: input.username, password: input.password,
                    thumbprint: input.thumbprint))
        } catch {
            logger.info("connection test of \(input.url) failed: \(FlotillaError.describe(error))")
            throw FlotillaError(.unavailable, "cannot reach vSphere at \(input.url): \(Self.describeTestFailure(error))")
        }
        defer { Task { await endpoint.close() } }
        let datacenters = try await endpoint.datacenterNames()
        let templates = try await endpoint.templateNames()
        return Report(
            product: endpoint.product.fullName, apiType: endpoint.product.apiType, apiVersion: endpoint.product.apiVersion,
            datacenters: datacenters, templates: templates)
    }

    /// What a failed test says: the kind of failure only. The URL may name any host, and what
    /// answers there (even its SOAP fault text) is not repeated to the person testing.
    static func describeTestFailure(_ error: any Error) -> String {
        switch error {
        case VSphereError.fault(let fault) where fault.name == .invalidLogin: "the user name or password was refused"
        case VSphereError.fault: "the server refused the login with a SOAP fault"
        case VSphereError.transport(let failure):
            switch failure.kind {
            case .connectionRefused: "the connection was refused"
            case .connectionClosed: "the connection was closed"
            case .timedOut: "no answer in time"
            case .tls: "the TLS handshake failed (an untrusted certificate, or not HTTPS)"
            case .certificateMismatch: "the server's certificate is not the pinned one"
            case .other: "the server could not be reached"
            }
        case VSphereError.invalidResponse: "the answer was not vSphere's (not SOAP)"
        default: "the test failed; the server log has the details"
        }
    }

    func add(_ input: Input) async throws -> VSphereConnection {
        let input = try validate(input)
        guard try await VSphereConnection.query(on: database).filter(\.$name == input.name).count() == 0 else {
            throw FlotillaError.conflict("a connection named '\(input.name)' already exists")
        }
        let connection = VSphereConnection()
        connection.name = input.name
        connection.url = input.url
        connection.username = input.username
        connection.passwordSealed = try secrets.seal(input.password)
        connection.thumbprint = input.thumbprint
        connection.datacenter = input.datacenter
        connection.vmFolder = input.vmFolder
        connection.resourcePool = input.resourcePool
        connection.datastore = input.datastore
        connection.network = input.network
        try await connection.create(on: database)
        await audit("settings.connection.add", "added vSphere connection '\(connection.name)' (\(connection.url))")
        return connection
    }

    func delete(_ id: UUID) async throws {
        guard let connection = try await VSphereConnection.find(id, on: database) else {
            throw FlotillaError.notFound("no such connection")
        }
        guard try await Role.query(on: database).filter(\.$connection.$id == id).count() == 0 else {
            throw FlotillaError.conflict("roles still use '\(connection.name)'; change or delete them first")
        }
        try await connection.delete(on: database)
        await vsphere.forget(id)
        await audit("settings.connection.delete", "deleted vSphere connection '\(connection.name)'")
    }

    /// The templates a role can be made from, read live from vSphere.
    func templates(of connectionID: UUID) async throws -> [String] {
        guard let connection = try await VSphereConnection.find(connectionID, on: database) else {
            throw FlotillaError.notFound("no such connection")
        }
        return try await vsphere.endpoint(for: connection).templateNames()
    }

    private func audit(_ action: String, _ details: String) async {
        await AuditLog.record(.operation, action: action, result: .success, details: details, by: actor, on: database, logger: logger)
    }
}

extension Request {
    var connections: Connections {
        let flotilla = application.flotilla
        return Connections(database: db, secrets: flotilla.secrets, vsphere: flotilla.vsphere, actor: auditActor, logger: logger)
    }
}
