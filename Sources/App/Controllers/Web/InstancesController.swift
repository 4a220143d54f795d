import Vapor

/// Settings → Instances: the Flotilla instances sharing the database (SPEC BEY-8).
enum InstancesController {
    struct Row: Encodable {
        var address: String
        var version: String
        var state: String
        var started: String
        var lastHeartbeat: String
        var stepsRunning: Int
        var leads: String
        var answering: Bool
    }

    struct Page: Encodable {
        var chrome: PageChrome
        var instances: [Row]
    }

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.settingsInstances.pathComponents, use: show).requires(.viewInstances)
    }

    @Sendable static func show(request: Request) async throws -> View {
        let display = DisplayTime(timeZone: request.application.flotilla.config.displayTimeZone)
        let rows = try await request.instances.list().map { instance in
            Row(
                address: instance.address, version: instance.version, state: instance.state.rawValue,
                started: display.string(instance.startedAt), lastHeartbeat: display.string(instance.lastHeartbeatAt),
                stepsRunning: instance.stepsRunning, leads: instance.leads.joined(separator: ", "),
                answering: instance.answering)
        }
        return try await request.view.render("instances", Page(chrome: PageChrome(request, title: "Instances"), instances: rows))
    }
}
