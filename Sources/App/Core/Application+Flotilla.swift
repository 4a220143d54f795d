import Vapor

/// What the whole application shares: the validated configuration and derived settings.
public struct FlotillaContext: Sendable {
    public let config: FlotillaConfig
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
