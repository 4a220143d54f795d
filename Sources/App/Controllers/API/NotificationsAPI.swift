import Vapor

/// `/api/v1/notifications` and `/api/v1/webhooks` (SPEC BEY-6): settings, webhooks, test
/// sends and the delivery log. System administrators only (USR-6).
enum NotificationsAPI {
    static func register(_ api: any RoutesBuilder) {
        let notifications = api.grouped("notifications")
        notifications.get("settings", use: settings).requires(.viewNotifications)
        notifications.patch("settings", use: changeSettings).requires(.manageNotifications)
        notifications.post("test-mail", use: testMail).requires(.manageNotifications)
        notifications.get("deliveries", use: deliveries).requires(.viewNotifications)
        notifications.get("deliveries", ":id", use: delivery).requires(.viewNotifications)
        let webhooks = api.grouped("webhooks")
        webhooks.get(use: listWebhooks).requires(.viewNotifications)
        webhooks.post(use: addWebhook).requires(.manageNotifications)
        webhooks.delete(":id", use: deleteWebhook).requires(.manageNotifications)
        webhooks.post(":id", "test", use: testWebhook).requires(.manageNotifications)
    }

    @Sendable static func settings(request: Request) async throws -> API.NotificationSettingsBody {
        let notifications = request.notifications
        return API.NotificationSettingsBody(
            rateLimitSeconds: try await notifications.rateLimitSeconds(), health: try await notifications.health())
    }

    @Sendable static func changeSettings(request: Request) async throws -> API.NotificationSettingsBody {
        let body = try request.content.decode(API.NotificationSettingsChange.self)
        try await request.notifications.setRateLimit(seconds: body.rateLimitSeconds)
        return try await settings(request: request)
    }

    @Sendable static func testMail(request: Request) async throws -> Response {
        let body = try request.content.decode(API.TestMail.self)
        let delivery = try await request.notifications.sendTestMail(to: body.to, from: request.auth.get(User.self))
        return try await API.DeliveryBody(delivery).encodeResponse(status: .accepted, for: request)
    }

    @Sendable static func deliveries(request: Request) async throws -> ListResponse<API.DeliveryBody> {
        let query = QueryParameters(request.url.query)
        let filter = try Notifications.DeliveryFilter(
            channel: query.first("channel"), status: query.first("status"), kind: query.first("kind"))
        let page = try await request.notifications.deliveries(
            filter, page: try PageRequest(page: query.first("page"), per: query.first("per")))
        return ListResponse(try page.map(API.DeliveryBody.init))
    }

    @Sendable static func delivery(request: Request) async throws -> API.DeliveryBody {
        try API.DeliveryBody(try await request.notifications.delivery(try request.uuidParameter("delivery")))
    }

    @Sendable static func listWebhooks(request: Request) async throws -> [API.WebhookBody] {
        try await request.notifications.webhooks().map { try API.WebhookBody($0, secret: nil) }
    }

    @Sendable static func addWebhook(request: Request) async throws -> Response {
        let body = try request.content.decode(API.NewWebhook.self)
        let (webhook, secret) = try await request.notifications.addWebhook(name: body.name, url: body.url)
        return try await API.WebhookBody(webhook, secret: secret).encodeResponse(status: .created, for: request)
    }

    @Sendable static func deleteWebhook(request: Request) async throws -> HTTPStatus {
        let notifications = request.notifications
        try await notifications.deleteWebhook(try await notifications.webhook(try request.uuidParameter("webhook")))
        return .noContent
    }

    @Sendable static func testWebhook(request: Request) async throws -> Response {
        let notifications = request.notifications
        let delivery = try await notifications.sendTest(to: try await notifications.webhook(try request.uuidParameter("webhook")))
        return try await API.DeliveryBody(delivery).encodeResponse(status: .accepted, for: request)
    }
}

extension API {
    struct NotificationSettingsBody: Content {
        var rateLimitSeconds: Int
        /// `host:port (security)` of the mail server; absent when mail is not configured.
        var mailServer: String?
        var queued: Int
        var failed: Int
        var lastFailure: String?
        var lastFailureAt: Date?

        init(rateLimitSeconds: Int, health: Notifications.Health) {
            self.rateLimitSeconds = rateLimitSeconds
            mailServer = health.mailServer
            queued = health.queued
            failed = health.failed
            lastFailure = health.lastFailure
            lastFailureAt = health.lastFailureAt
        }
    }

    struct NotificationSettingsChange: Content {
        var rateLimitSeconds: Int
    }

    struct TestMail: Content {
        /// Absent: the signed-in user's own address.
        var to: String?
    }

    struct NewWebhook: Content {
        var name: String
        var url: String
    }

    struct WebhookBody: Content {
        var id: UUID
        var name: String
        var url: String
        var createdAt: Date?
        /// The signing secret: only in the answer that creates the webhook.
        var secret: String?

        init(_ webhook: Webhook, secret: String?) throws {
            id = try webhook.requireID()
            name = webhook.name
            url = webhook.url
            createdAt = webhook.createdAt
            self.secret = secret
        }
    }

    struct DeliveryAttemptBody: Content {
        var number: Int
        var at: Date
        var outcome: String
        var statusCode: Int?
        var error: String?
        var milliseconds: Int
    }

    struct DeliveryBody: Content {
        var id: UUID
        var messageID: UUID
        var kind: String
        var channel: String
        var target: String
        var subject: String
        var status: String
        var attempts: Int
        var nextAttemptAt: Date?
        var lastStatusCode: Int?
        var lastError: String?
        var createdAt: Date?
        var deliveredAt: Date?
        var attemptLog: [DeliveryAttemptBody]

        init(_ delivery: NotificationDelivery) throws {
            id = try delivery.requireID()
            messageID = delivery.messageID
            kind = delivery.kind
            channel = delivery.channel.rawValue
            target = delivery.target
            subject = delivery.subject
            status = delivery.status.rawValue
            attempts = delivery.attempts
            nextAttemptAt = delivery.status == .queued ? delivery.nextAttemptAt : nil
            lastStatusCode = delivery.lastStatusCode
            lastError = delivery.lastError
            createdAt = delivery.createdAt
            deliveredAt = delivery.deliveredAt
            attemptLog = (delivery.$attemptLog.value ?? []).sorted { $0.number < $1.number }.map {
                DeliveryAttemptBody(
                    number: $0.number, at: $0.at, outcome: $0.outcome.rawValue, statusCode: $0.statusCode, error: $0.error,
                    milliseconds: $0.milliseconds)
            }
        }
    }
}
