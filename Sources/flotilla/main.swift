import App
import Logging
import NIOCore
import NIOPosix
import Vapor

/// The `flotilla` executable: read the configuration, build the app, run the command
/// (`serve` by default). A configuration problem stops it with a message naming the setting.
var environment = try Environment.detect()
try LoggingSystem.bootstrap(from: &environment)

func refuse(_ error: ConfigError) -> Never {
    FileHandle.standardError.write(Data("flotilla: \(error)\n".utf8))
    exit(2)
}

let config: FlotillaConfig
do {
    config = try FlotillaConfig.load()
} catch let error as ConfigError {
    refuse(error)
}

let app = try await Application.make(environment)
// Swift concurrency runs on the server's event loops, so an async handler no longer hops
// between the concurrency pool and an event loop around every database call (issue 8 §5).
_ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
do {
    try await configure(app, config: config)
    try await app.execute()
} catch let error as ConfigError {
    try? await app.asyncShutdown()
    refuse(error)
} catch {
    app.logger.report(error: error)
    try? await app.asyncShutdown()
    exit(1)
}
try await app.asyncShutdown()
