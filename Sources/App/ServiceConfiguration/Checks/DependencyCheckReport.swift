import Foundation
import Vapor

/// The verdict of a profile's dependency checks (SPEC CFG-2): one result per service, dependency
/// VM and place the check ran from. It holds no secret values, so the API returns it and the
/// audit log records it as it is.
struct DependencyCheckReport: Content, Sendable, Equatable {
    /// Every result passed: only then may the wizard configure.
    var passed: Bool
    var elapsedMilliseconds: Int
    /// Sorted by role, service, then origin (the platform first).
    var results: [Result]
    /// One line per failed result, naming the service, the VM, the origin and the layer.
    var failures: [String]

    /// Which kind of check ran, so a page can tell a protocol answer from a stand-in's open port.
    enum Method: String, Content, Sendable, Equatable {
        /// The server spoke its protocol (Redis PING, MySQL login and SELECT 1, AMQP open, Mongo ping, NFS export list).
        case `protocol`
        /// The dependency VM runs a stand-in: its process runs there and the port accepts connections.
        case processAndPort
        /// A `tcp` check: the port accepts connections.
        case port
    }

    /// Where a failed check stopped.
    enum Layer: String, Content, Sendable, Equatable {
        /// The address did not answer (unreachable network, dropped packets).
        case noRoute
        /// The connection was refused while the service's process runs.
        case portClosed
        /// The service's process does not run on the dependency VM.
        case serviceNotRunning
        /// The login or its rights were refused (user, password, schema, vhost).
        case authentication
        /// Something answered but not the service's protocol, or not ready.
        case protocolError
        /// Connected, but no answer in time.
        case timeout
        /// The check could not run on the target VM (no SSH login, no python3 there).
        case originUnavailable
    }

    struct Result: Content, Sendable, Equatable {
        /// The dependency role, e.g. `mysql`.
        var role: String
        var vmID: UUID
        var vm: String
        var address: String
        var port: Int
        /// The check's kind: redis, mysql, rabbitmq, mongo, nfs or tcp.
        var service: String
        /// `platform` or the target VM's host name.
        var origin: String
        var originVMID: UUID?
        var method: Method
        var methodDescription: String
        var passed: Bool
        var layer: Layer?
        /// What the service answered, or why the check failed.
        var message: String
        var milliseconds: Int
    }
}
