import Vapor

import RemoteShell

/// What the whole application shares: the validated configuration and the long-lived services.
public struct FlotillaContext: Sendable {
    public let config: FlotillaConfig
    let secrets: SecretBox
    let jobs: JobEngine
    let vsphere: VSphereSessions
    let shell: ShellPool
    let hostKeys: FileHostKeyStore
    let provisioning: Provisioning
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
