import Leaf
import LeafKit
import Vapor

extension Application.Views.Provider {
    /// Leaf with its parsed templates cached in every environment. Leaf turns its cache off in
    /// `development`, Vapor's environment when no `--env` is given (as `flotilla serve` runs), so
    /// every page read its templates from disk and parsed them again (a tenth of the dashboard
    /// page's CPU time in `perf`, issue 10's page benchmark). The templates ship with the server
    /// and change only with it: a changed template shows after a restart.
    static var cachedLeaf: Self {
        .init { app in
            app.views.use { app in
                LeafRenderer(
                    configuration: app.leaf.configuration, tags: app.leaf.tags, cache: app.leaf.cache, sources: app.leaf.sources,
                    eventLoop: app.eventLoopGroup.next(), userInfo: ["application": app])
            }
        }
    }
}
