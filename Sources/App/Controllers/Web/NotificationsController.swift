import Vapor

/// Settings → Notifications (SPEC BEY-6): mail status and test, the rate limit, webhooks
/// (the secret shown once, on the page that follows its creation) and the delivery log.
/// System administrators only (USR-6).
enum NotificationsController {
    struct WebhookRow: Encodable {
        var name: String
        var url: String
        var created: String
        var testURL: String
        var deleteURL: String
    }

    struct Page: Encodable {
        var chrome: PageChrome
        var rateLimitSeconds: Int
        var health: Notifications.Health
        var lastFailureAt: String?
        var webhooks: [WebhookRow]
        /// A new webhook's secret, on the one page that shows it.
        var newSecret: String?
        var newSecretWebhook: String?
        var ownAddress: String?
        var error: String?
        var form: [String: String]
        var deliveriesURL: String
    }

    struct AttemptRow: Encodable {
        var number: Int
        var at: String
        var outcome: String
        var statusCode: String
        var error: String
        var milliseconds: Int
    }

    struct DeliveryRow: Encodable {
        var created: String
        var kind: String
        var channel: String
        var target: String
        var subject: String
        var status: String
        var attempts: [AttemptRow]
    }

    struct Option: Encodable {
        var value: String
        var label: String
        var selected: Bool
    }

    struct DeliveriesPage: Encodable {
        var chrome: PageChrome
        var deliveries: [DeliveryRow]
        var pagination: PaginationView?
        var channels: [Option]
        var statuses: [Option]
        var kinds: [Option]
        var error: String?
    }

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.notifications.pathComponents, use: show).requires(.viewNotifications)
        routes.post(SiteURL.notificationsSettings.pathComponents, use: changeSettings).requires(.manageNotifications)
        routes.post(SiteURL.notificationsTestMail.pathComponents, use: testMail).requires(.manageNotifications)
        routes.post(SiteURL.notificationsWebhooks.pathComponents, use: addWebhook).requires(.manageNotifications)
        routes.post(SiteURL.notificationsWebhookTest(id: nil).pathComponents, use: testWebhook).requires(.manageNotifications)
        routes.post(SiteURL.notificationsWebhookDelete(id: nil).pathComponents, use: deleteWebhook).requires(.manageNotifications)
        routes.get(SiteURL.notificationsDeliveries.pathComponents, use: deliveries).requires(.viewNotifications)
    }

    @Sendable static func show(request: Request) async throws -> Response {
        try await render(request)
    }

    private static func render(
        _ request: Request, newWebhook: (Webhook, secret: String)? = nil, error: String? = nil, form: [String: String] = [:],
        status: HTTPResponseStatus = .ok
    ) async throws -> Response {
        let notifications = request.notifications
        let display = DisplayTime(timeZone: request.application.flotilla.config.displayTimeZone)
        let health = try await notifications.health()
        let webhooks = try await notifications.webhooks().map { webhook in
            let id = try webhook.requireID()
            return WebhookRow(
                name: webhook.name, url: webhook.url, created: webhook.createdAt.map(display.string) ?? "",
                testURL: SiteURL.notificationsWebhookTest(id: id).relative, deleteURL: SiteURL.notificationsWebhookDelete(id: id).relative)
        }
        let page = Page(
            chrome: PageChrome(request, title: "Notifications"), rateLimitSeconds: try await notifications.rateLimitSeconds(),
            health: health, lastFailureAt: health.lastFailureAt.map(display.string), webhooks: webhooks, newSecret: newWebhook?.secret,
            newSecretWebhook: newWebhook?.0.name, ownAddress: request.auth.get(User.self)?.email, error: error, form: form,
            deliveriesURL: SiteURL.notificationsDeliveries.relative)
        let response = try await request.view.render("notifications", page).encodeResponse(for: request)
        response.status = status
        // The page with a new secret must not be kept by the browser or a proxy.
        if newWebhook != nil { response.headers.replaceOrAdd(name: .cacheControl, value: "no-store") }
        return response
    }

    @Sendable static func changeSettings(request: Request) async throws -> Response {
        let query = QueryParameters(request.body.string)
        do {
            guard let seconds = query.first("rateLimitSeconds").flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) else {
                throw FlotillaError.validation("the rate-limit window is a whole number of seconds")
            }
            try await request.notifications.setRateLimit(seconds: seconds)
            request.notice("At most one notification per service every \(seconds) seconds.")
            return request.redirect(to: SiteURL.notifications.relative)
        } catch let error as FlotillaError {
            return try await render(request, error: error.message, status: error.status)
        }
    }

    @Sendable static func testMail(request: Request) async throws -> Response {
        let query = QueryParameters(request.body.string)
        do {
            let delivery = try await request.notifications.sendTestMail(to: query.first("to"), from: request.auth.get(User.self))
            request.notice("A test mail to \(delivery.target) is queued; its outcome appears in the delivery log.")
            return request.redirect(to: SiteURL.notifications.relative)
        } catch let error as FlotillaError {
            return try await render(
                request, error: error.message, form: ["to": String((query.first("to") ?? "").prefix(256))], status: error.status)
        }
    }

    @Sendable static func addWebhook(request: Request) async throws -> Response {
        let query = QueryParameters(request.body.string)
        let name = query.first("name") ?? ""
        let url = query.first("url") ?? ""
        do {
            let created = try await request.notifications.addWebhook(name: name, url: url)
            return try await render(request, newWebhook: created, status: .created)
        } catch let error as FlotillaError {
            return try await render(
                request, error: error.message, form: ["name": String(name.prefix(64)), "url": String(url.prefix(2000))],
                status: error.status)
        }
    }

    @Sendable static func testWebhook(request: Request) async throws -> Response {
        let notifications = request.notifications
        let webhook = try await notifications.webhook(try request.uuidParameter("webhook"))
        _ = try await notifications.sendTest(to: webhook)
        request.notice("A test request to '\(webhook.name)' is queued; its outcome appears in the delivery log.")
        return request.redirect(to: SiteURL.notifications.relative)
    }

    @Sendable static func deleteWebhook(request: Request) async throws -> Response {
        let notifications = request.notifications
        let webhook = try await notifications.webhook(try request.uuidParameter("webhook"))
        try await notifications.deleteWebhook(webhook)
        request.notice("Webhook '\(webhook.name)' was deleted.")
        return request.redirect(to: SiteURL.notifications.relative)
    }

    @Sendable static func deliveries(request: Request) async throws -> Response {
        let query = QueryParameters(request.url.query)
        let display = DisplayTime(timeZone: request.application.flotilla.config.displayTimeZone)
        let (channel, status, kind) = (query.first("channel") ?? "", query.first("status") ?? "", query.first("kind") ?? "")
        func options(_ values: [String], _ selected: String) -> [Option] {
            [Option(value: "", label: "any", selected: selected.isEmpty)]
                + values.map { Option(value: $0, label: $0, selected: $0 == selected) }
        }
        var page = DeliveriesPage(
            chrome: PageChrome(request, title: "Delivery log"), deliveries: [], pagination: nil,
            channels: options(NotificationChannel.allCases.map(\.rawValue), channel),
            statuses: options(DeliveryStatus.allCases.map(\.rawValue), status),
            kinds: options(NotificationEvent.Kind.allCases.map(\.rawValue) + ["digest", "test"], kind), error: nil)
        var responseStatus = HTTPResponseStatus.ok
        do {
            let filter = try Notifications.DeliveryFilter(channel: channel, status: status, kind: kind)
            let result = try await request.notifications.deliveries(
                filter, page: try PageRequest(page: query.first("page"), per: query.first("per")))
            page.deliveries = result.items.map { delivery in
                DeliveryRow(
                    created: delivery.createdAt.map(display.string) ?? "", kind: delivery.kind, channel: delivery.channel.rawValue,
                    target: delivery.target, subject: delivery.subject, status: delivery.status.rawValue,
                    attempts: (delivery.$attemptLog.value ?? []).sorted { $0.number < $1.number }.map {
                        AttemptRow(
                            number: $0.number, at: display.string($0.at), outcome: $0.outcome.rawValue,
                            statusCode: $0.statusCode.map(String.init) ?? "—", error: $0.error ?? "", milliseconds: $0.milliseconds)
                    })
            }
            let kept = [("channel", channel), ("status", status), ("kind", kind)].filter { !$0.1.isEmpty }
            page.pagination = PaginationView(result, path: SiteURL.notificationsDeliveries.relative, query: kept)
        } catch let error as FlotillaError {
            page.error = error.message
            responseStatus = error.status
        }
        let response = try await request.view.render("notification-deliveries", page).encodeResponse(for: request)
        response.status = responseStatus
        return response
    }
}
