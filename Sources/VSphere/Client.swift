import Foundation
import Logging

/// `about` from ServiceContent: which product and API this endpoint is.
public struct AboutInfo: Sendable, Equatable {
    public enum APIType: String, Sendable {
        /// vCenter Server.
        case virtualCenter = "VirtualCenter"
        /// A standalone ESXi host (no CloneVM_Task on real hosts).
        case hostAgent = "HostAgent"
    }

    public var name: String
    public var fullName: String
    public var vendor: String
    public var version: String
    public var build: String
    public var apiType: APIType?
    public var apiVersion: String
    public var instanceUUID: String?

    init(_ element: SOAPElement) {
        name = element.child("name")?.text ?? ""
        fullName = element.child("fullName")?.text ?? ""
        vendor = element.child("vendor")?.text ?? ""
        version = element.child("version")?.text ?? ""
        build = element.child("build")?.text ?? ""
        apiType = element.child("apiType").flatMap { APIType(rawValue: $0.text) }
        apiVersion = element.child("apiVersion")?.text ?? ""
        instanceUUID = element.child("instanceUuid")?.text
    }
}

/// The well-known managed objects of an endpoint (ServiceInstance.content).
public struct ServiceContent: Sendable {
    public var about: AboutInfo
    public var rootFolder: ManagedObjectReference
    public var propertyCollector: ManagedObjectReference
    public var sessionManager: ManagedObjectReference
    public var viewManager: ManagedObjectReference?
    public var searchIndex: ManagedObjectReference?
    public var performanceManager: ManagedObjectReference?
    public var virtualDiskManager: ManagedObjectReference?
    public var fileManager: ManagedObjectReference?

    init(_ element: SOAPElement) throws {
        guard let about = element.child("about"),
            let rootFolder = ManagedObjectReference(element.child("rootFolder")),
            let propertyCollector = ManagedObjectReference(element.child("propertyCollector")),
            let sessionManager = ManagedObjectReference(element.child("sessionManager"))
        else {
            throw VSphereError.invalidResponse("ServiceContent without about, rootFolder, propertyCollector or sessionManager")
        }
        self.about = AboutInfo(about)
        self.rootFolder = rootFolder
        self.propertyCollector = propertyCollector
        self.sessionManager = sessionManager
        viewManager = ManagedObjectReference(element.child("viewManager"))
        searchIndex = ManagedObjectReference(element.child("searchIndex"))
        performanceManager = ManagedObjectReference(element.child("perfManager"))
        virtualDiskManager = ManagedObjectReference(element.child("virtualDiskManager"))
        fileManager = ManagedObjectReference(element.child("fileManager"))
    }
}

/// A logged-in session with one vCenter or ESXi endpoint. Thread-safe; share one per endpoint,
/// and `close()` it when done (it owns an HTTP client that must be shut down).
///
///     let client = try await VSphereClient.connect(url: url, username: "u", password: "p",
///                                                  trust: .pinnedSHA256(thumbprint))
///     let vms = try await client.listVirtualMachines()
public final class VSphereClient: Sendable {
    public let connection: SOAPConnection
    public let serviceContent: ServiceContent
    let performanceCounters = PerformanceCounterCache()

    public var about: AboutInfo { serviceContent.about }

    static let serviceInstance = ManagedObjectReference(type: "ServiceInstance", value: "ServiceInstance")

    /// Connects over HTTPS (or HTTP), reads ServiceContent and logs in. The session is renewed
    /// automatically once per call if the server drops it.
    /// - Parameters:
    ///   - url: the SDK endpoint, e.g. `https://vcenter.example.com/sdk`.
    ///   - timeout: the limit for each HTTP exchange (a call waiting on a task uses its own).
    public static func connect(
        url: URL,
        username: String,
        password: String,
        trust: TrustPolicy = .system,
        timeout: Duration = .seconds(60),
        logger: Logger = Logger(label: "vsphere")
    ) async throws -> VSphereClient {
        let transport = try await HTTPTransport.make(url: url, trust: trust, connectTimeout: min(timeout, .seconds(30)), logger: logger)
        do {
            return try await connect(transport: transport, username: username, password: password, timeout: timeout, logger: logger)
        } catch {
            try? await transport.shutdown()
            throw error
        }
    }

    /// Connects over any transport (tests use recorded responses).
    public static func connect(
        transport: any SOAPTransport,
        username: String,
        password: String,
        apiVersion: String = "6.5",
        timeout: Duration = .seconds(60),
        logger: Logger = Logger(label: "vsphere")
    ) async throws -> VSphereClient {
        let bootstrap = SOAPConnection(transport: transport, apiVersion: apiVersion, timeout: timeout, logger: logger)
        let content = try await retrieveServiceContent(bootstrap)
        // Speak the server's own version (capped: newer servers still accept older SOAPActions).
        let connection = SOAPConnection(
            transport: transport,
            apiVersion: content.about.apiVersion.isEmpty ? apiVersion : content.about.apiVersion,
            timeout: timeout,
            logger: logger
        )
        let client = VSphereClient(connection: connection, serviceContent: content)
        try await client.login(username: username, password: password)
        connection.setRelogin { [sessionManager = content.sessionManager] connection in
            _ = try await connection.invokeOnce(Self.loginOperation(sessionManager, username: username, password: password))
        }
        return client
    }

    init(connection: SOAPConnection, serviceContent: ServiceContent) {
        self.connection = connection
        self.serviceContent = serviceContent
    }

    static func retrieveServiceContent(_ connection: SOAPConnection) async throws -> ServiceContent {
        let returned = try await connection.invokeReturning(SOAPOperation("RetrieveServiceContent", on: serviceInstance))
        guard let content = returned.first else { throw VSphereError.invalidResponse("empty ServiceContent") }
        return try ServiceContent(content)
    }

    static func loginOperation(_ sessionManager: ManagedObjectReference, username: String, password: String) -> SOAPOperation {
        SOAPOperation("Login", on: sessionManager, [("userName", username), ("password", password)])
    }

    func login(username: String, password: String) async throws {
        _ = try await connection.invokeOnce(Self.loginOperation(serviceContent.sessionManager, username: username, password: password))
    }

    /// Ends the session on the server; later calls would log in again.
    public func logout() async throws {
        _ = try await connection.invokeOnce(SOAPOperation("Logout", on: serviceContent.sessionManager))
        connection.clearSession()
    }

    /// Logs out (best effort) and releases the HTTP connections. The client is unusable afterwards.
    public func close() async throws {
        connection.setRelogin(nil)
        try? await logout()
        try await connection.transport.shutdown()
    }

    /// The current session's cookie value, for diagnostics and for sharing a session.
    public var sessionCookie: String? { connection.sessionCookie }
}
