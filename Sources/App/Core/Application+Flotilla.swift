import RemoteShell
import Vapor

/// What the whole application shares: the validated configuration and the long-lived services.
/// Request helpers (`request.connections`, `request.vms`…) hand each service only the parts
/// it needs.
public struct FlotillaContext: Sendable {
    public let config: FlotillaConfig
    let secrets: SecretBox
    let jobs: JobEngine
    let vsphere: any VSphereProvider
    let shell: any GuestShell
    var vmOperations: VMOperations
}

/// The two outside systems the App depends on. Nil means the live implementation
/// (`VSphereSessions`, `ShellPool`); tests pass in-memory ones.
struct OutsideSystems: Sendable {
    var vsphere: (any VSphereProvider)?
    var shell: (any GuestShell)?

    static let live = OutsideSystems(vsphere: nil, shell: nil)
}

extension Application {
    private struct FlotillaContextKey: StorageKey {
        typealias Value = FlotillaContext
    }

    /// Flotilla's configuration, set once by `configure(_:config:)`.
    public var flotilla: FlotillaContext {
        get {
            guard let context = storage[FlotillaContextKey.self] else {
                preconditionFailure("configure(_:config:) must run before the application is used")
            }
            return context
        }
        set { storage[FlotillaContextKey.self] = newValue }
    }
}
