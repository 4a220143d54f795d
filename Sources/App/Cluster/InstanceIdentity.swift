import Foundation
import Vapor

/// Who this running process is among the Flotilla instances sharing one database (SPEC BEY-8).
///
/// The ID is new at every start, so a restarted instance never inherits the leases (job
/// steps, periodic tasks) of its previous life: those expire and are taken over.
public struct InstanceIdentity: Sendable, Equatable {
    /// The software release; shown beside each instance so a rolling upgrade can be followed.
    public static let softwareVersion = "0.9.0"

    public let id: UUID
    public let startedAt: Date
    /// `host:port` where other people and proxies reach this instance.
    public let address: String
    public let version: String

    init(id: UUID = UUID(), startedAt: Date = Date(), address: String, version: String = Self.softwareVersion) {
        self.id = id
        self.startedAt = startedAt
        self.address = address
        self.version = version
    }

    /// The configured advertised address, else this machine's host name with the listen port
    /// (the listen host is often 0.0.0.0 or 127.0.0.1, which says nothing to a reader).
    init(config: FlotillaConfig) {
        let address = config.advertisedAddress ?? "\(ProcessInfo.processInfo.hostName):\(config.listenPort)"
        self.init(address: address)
    }
}

extension Application {
    private struct InstanceIdentityKey: StorageKey {
        typealias Value = InstanceIdentity
    }

    /// This process's identity, set once by `configure(_:config:)`; the owner of its leases.
    public var instance: InstanceIdentity {
        get {
            guard let identity = storage[InstanceIdentityKey.self] else {
                preconditionFailure("configure(_:config:) must run before the application is used")
            }
            return identity
        }
        set { storage[InstanceIdentityKey.self] = newValue }
    }
}
