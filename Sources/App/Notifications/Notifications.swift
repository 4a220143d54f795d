import Fluent
import Mail
import SQLKit
import Vapor

/// The one notification policy (SPEC BEY-6) for every source: an event is deduplicated, then
/// either sent at once or held for its stream's digest (at most one message per service per
/// rate-limit window), addressed to the owners with an e-mail address and to every webhook,
/// and written to the durable delivery queue. Publishing never waits for a mail server or a
/// webhook: `NotificationWorker` delivers from the queue.
///
/// Other modules call `request.notifications.publish(event)` or `app.notifications.publish(event)`.
struct Notifications: Sendable {
    let database: any Database
    let secrets: SecretBox
    let smtp: FlotillaConfig.SMTP?
    let displayTime: DisplayTime
    let actor: AuditLog.Actor
    let logger: Logger
    /// Nil where this process does not deliver (a command beside the server).
    let worker: NotificationWorker?

    /// After this long a pending event of a stream that never had a message is taken as left
    /// behind by a publishing process that stopped, and is sent by the delivery task.
    static let abandonedPublishSeconds: TimeInterval = 60

    /// What `publish` did with an event.
    enum PublishOutcome: Equatable, Sendable {
        /// Sent in a message now (as `deliveries` queued deliveries; a held-back backlog rides along as a digest).
        case queued(deliveries: Int)
        /// The stream had a message within the window: the event waits for the digest.
        case heldForDigest
        /// The same event was published before.
        case duplicate
    }

    /// Accepts an event for notification. Throws only for an invalid event or an unusable database.
    @discardableResult
    func publish(_ event: NotificationEvent, now: Date = Date()) async throws -> PublishOutcome {
        try event.validate()
        do {
            try await NotificationEventRecord(event, state: .pending).create(on: database)
        } catch let error as any DatabaseError where error.isConstraintFailure {
            return .duplicate
        }
        guard try await claimStream(event.stream, now: now, window: try await rateLimitSeconds()) else {
            worker?.kick()
            return .heldForDigest
        }
        let deliveries = try await sendPending(stream: event.stream, now: now)
        worker?.kick()
        return .queued(deliveries: deliveries)
    }

    /// Sends the digest of every stream whose window has passed since its last message.
    /// Returns the number of deliveries queued.
    @discardableResult
    func sendDueDigests(now: Date = Date()) async throws -> Int {
        let pending = try await NotificationEventRecord.query(on: database).filter(\.$state == .pending).all()
        guard !pending.isEmpty else { return 0 }
        // A stream that never had a message belongs to a `publish` still running: taking it here
        // would race that call. Its events are only ours once they are old enough that the
        // publishing process must have stopped between storing and sending them.
        let streams = Set(pending.map(\.stream))
        let messaged = Set(try await NotificationStream.query(on: database).filter(\.$key ~~ Array(streams)).all(\.$key))
        let abandoned = Set(
            pending.filter { ($0.createdAt ?? now) <= now.addingTimeInterval(-Self.abandonedPublishSeconds) }.map(\.stream))
        let window = try await rateLimitSeconds()
        var queued = 0
        for stream in streams.intersection(messaged.union(abandoned)).sorted()
        where try await claimStream(stream, now: now, window: window) {
            queued += try await sendPending(stream: stream, now: now)
        }
        return queued
    }

    // MARK: - Rate limit

    /// Takes the right to send a message for `key` now: true when the stream never had one or
    /// its last one is at least `window` seconds old. Atomic across instances (insert, or a
    /// conditional update that reports the row it changed).
    private func claimStream(_ key: String, now: Date, window: Int) async throws -> Bool {
        let stream = NotificationStream()
        stream.key = key
        stream.lastMessageAt = now
        do {
            try await stream.create(on: database)
            return true
        } catch let error as any DatabaseError where error.isConstraintFailure {
            let rows = try await sql.update(NotificationStream.schema)
                .set("last_message_at", to: now)
                .where("key", .equal, key)
                .where("last_message_at", .lessThanOrEqual, now.addingTimeInterval(-TimeInterval(window)))
                .returning("key")
                .all()
            return !rows.isEmpty
        }
    }

    /// Takes every pending event of the stream into one message (a digest when there are
    /// several) and queues its deliveries.
    private func sendPending(stream: String, now: Date) async throws -> Int {
        let messageID = UUID()
        try await sql.update(NotificationEventRecord.schema)
            .set("state", to: NotificationEventState.sent.rawValue)
            .set("message_id", to: messageID)
            .where("stream", .equal, stream)
            .where("state", .equal, NotificationEventState.pending.rawValue)
            .run()
        let records = try await NotificationEventRecord.query(on: database).filter(\.$messageID == messageID)
            .sort(\.$occurredAt).sort(\.$createdAt).all()
        guard !records.isEmpty else { return 0 }
        if records.count > 1 {
            try await NotificationEventRecord.query(on: database).filter(\.$messageID == messageID)
                .set(\.$state, to: .digested).update()
        }
        let message = NotificationMessage(events: records.map(\.event), window: try await rateLimitSeconds(), time: displayTime)
        return try await enqueue(message, messageID: messageID, now: now)
    }

    // MARK: - Recipients and the queue

    /// Queues one delivery per owner with an e-mail address (when mail is configured) and per webhook.
    private func enqueue(_ message: NotificationMessage, messageID: UUID, now: Date) async throws -> Int {
        var deliveries: [NotificationDelivery] = []
        if smtp != nil {
            var owners = User.query(on: database).filter(\.$email != nil)
            owners = message.owners.isEmpty ? owners.filter(\.$role == .system) : owners.filter(\.$username ~~ message.owners)
            for owner in try await owners.sort(\.$username).all() {
                guard let address = owner.email else { continue }
                deliveries.append(
                    NotificationDelivery(
                        messageID: messageID, kind: message.kind, channel: .email, webhookID: nil, target: address,
                        subject: message.subject, body: message.text, now: now))
            }
        }
        for webhook in try await Webhook.query(on: database).sort(\.$name).all() {
            deliveries.append(
                NotificationDelivery(
                    messageID: messageID, kind: message.kind, channel: .webhook, webhookID: try webhook.requireID(), target: webhook.name,
                    subject: message.subject, body: message.json, now: now))
        }
        guard !deliveries.isEmpty else {
            logger.notice("notification '\(message.subject)' has no recipient (no owner with an e-mail address, no webhook)")
            return 0
        }
        let queued = deliveries
        try await database.transaction { transaction in
            for delivery in queued { try await delivery.create(on: transaction) }
        }
        return queued.count
    }

    private var sql: any SQLDatabase {
        get throws {
            guard let sql = database as? any SQLDatabase else {
                throw FlotillaError(.unavailable, "notifications need an SQL database")
            }
            return sql
        }
    }

    // MARK: - Settings

    func rateLimitSeconds() async throws -> Int {
        try await NotificationSettings.query(on: database).first()?.rateLimitSeconds ?? NotificationSettings.defaultRateLimitSeconds
    }

    func setRateLimit(seconds: Int) async throws {
        try await audited("notifications.settings", "changing the notification rate limit") {
            let range = NotificationSettings.rateLimitRange
            guard range.contains(seconds) else {
                throw FlotillaError.validation("the rate-limit window is \(range.lowerBound) to \(range.upperBound) seconds")
            }
            let settings = try await NotificationSettings.query(on: database).first() ?? NotificationSettings(rateLimitSeconds: seconds)
            settings.rateLimitSeconds = seconds
            try await settings.save(on: database)
            return ((), "at most one notification per service every \(seconds) s")
        }
    }

    // MARK: - Webhooks

    static let maximumWebhookNameLength = 64
    static let maximumWebhookURLLength = 2000

    func webhooks() async throws -> [Webhook] {
        try await Webhook.query(on: database).sort(\.$name).all()
    }

    func webhook(_ id: UUID) async throws -> Webhook {
        guard let webhook = try await Webhook.find(id, on: database) else { throw FlotillaError.notFound("no such webhook") }
        return webhook
    }

    /// Adds a webhook with a new signing secret, which is returned here and never again.
    func addWebhook(name rawName: String, url rawURL: String) async throws -> (Webhook, secret: String) {
        let name = rawName.trimmingCharacters(in: .whitespaces)
        return try await audited("webhook.add", "adding webhook '\(name.prefix(Self.maximumWebhookNameLength))'") {
            guard !name.isEmpty, name.count <= Self.maximumWebhookNameLength,
                !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else {
                throw FlotillaError.validation(
                    "a webhook name has 1 to \(Self.maximumWebhookNameLength) characters without control characters")
            }
            let url = try Self.validateWebhookURL(rawURL.trimmingCharacters(in: .whitespaces))
            guard try await Webhook.query(on: database).filter(\.$name == name).first() == nil else {
                throw FlotillaError.conflict("a webhook named '\(name)' already exists")
            }
            let secret = "whsec_" + [UInt8].random(count: 32).base64URLEncodedString()
            let webhook = Webhook(name: name, url: url, sealedSecret: try secrets.seal(secret))
            do {
                try await webhook.create(on: database)
            } catch let error as any DatabaseError where error.isConstraintFailure {
                throw FlotillaError.conflict("a webhook named '\(name)' already exists")
            }
            return ((webhook, secret), "added webhook '\(name)' posting to \(Self.displayURL(url))")
        }
    }

    func deleteWebhook(_ webhook: Webhook) async throws {
        try await audited("webhook.delete", "deleting webhook '\(webhook.name)'") {
            try await webhook.delete(on: database)
            return ((), "deleted webhook '\(webhook.name)'")
        }
    }

    /// http or https, a host, no user name or password (they would travel in every request and
    /// show in pages), no fragment, no spaces or control characters.
    static func validateWebhookURL(_ text: String) throws -> String {
        guard !text.isEmpty, text.count <= maximumWebhookURLLength else {
            throw FlotillaError.validation("a webhook URL is required and has at most \(maximumWebhookURLLength) characters")
        }
        guard text.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F }) else {
            throw FlotillaError.validation("a webhook URL may not contain spaces, control or non-ASCII characters")
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https"
        else {
            throw FlotillaError.validation("a webhook URL starts with http:// or https://")
        }
        guard let host = components.host, !host.isEmpty else { throw FlotillaError.validation("a webhook URL needs a host") }
        guard components.user == nil, components.password == nil, !text.contains("@") else {
            throw FlotillaError.validation("a webhook URL may not carry a user name or password; requests are signed instead")
        }
        guard components.fragment == nil else { throw FlotillaError.validation("a webhook URL may not have a #fragment") }
        return text
    }

    /// The URL without its query (which may carry a token), for the audit log.
    static func displayURL(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "" }
        components.query = nil
        return components.string ?? ""
    }

    // MARK: - Test sends

    /// Queues a test mail to `address` (default: the acting user's own address).
    func sendTestMail(to address: String?, from user: User?) async throws -> NotificationDelivery {
        guard let smtp else {
            throw FlotillaError.validation("mail is not configured: set FLOTILLA_SMTP_HOST (and the other FLOTILLA_SMTP_* settings)")
        }
        let target = (address?.isEmpty == false ? address : nil) ?? user?.email
        guard let target else { throw FlotillaError.validation("give an address, or set an e-mail address on your account") }
        try UserAdministration.validateEmail(target)
        let message = NotificationMessage.test(channel: "mail", server: "\(smtp.host):\(smtp.port)", by: actor.name)
        let delivery = NotificationDelivery(
            messageID: UUID(), kind: "test", channel: .email, webhookID: nil, target: target, subject: message.subject,
            body: message.text, now: Date())
        try await delivery.create(on: database)
        await AuditLog.record(
            .operation, action: "notifications.test", result: .success, details: "queued a test mail to \(target)", by: actor,
            on: database, logger: logger)
        worker?.kick()
        return delivery
    }

    /// Queues a test request to a webhook.
    func sendTest(to webhook: Webhook) async throws -> NotificationDelivery {
        let message = NotificationMessage.test(channel: "webhook", server: webhook.name, by: actor.name)
        let delivery = NotificationDelivery(
            messageID: UUID(), kind: "test", channel: .webhook, webhookID: try webhook.requireID(), target: webhook.name,
            subject: message.subject, body: message.json, now: Date())
        try await delivery.create(on: database)
        await AuditLog.record(
            .operation, action: "notifications.test", result: .success, details: "queued a test request to webhook '\(webhook.name)'",
            by: actor, on: database, logger: logger)
        worker?.kick()
        return delivery
    }

    // MARK: - The delivery log

    struct DeliveryFilter: Sendable {
        var channel: NotificationChannel?
        var status: DeliveryStatus?
        var kind: String?

        init(channel: String?, status: String?, kind: String?) throws {
            func parse<T: RawRepresentable<String>>(_ text: String?, _ name: String, _ all: [T]) throws -> T? {
                guard let text, !text.isEmpty else { return nil }
                guard let value = T(rawValue: text) else {
                    throw FlotillaError.validation("\(name) must be one of \(all.map(\.rawValue).joined(separator: ", "))")
                }
                return value
            }
            self.channel = try parse(channel, "channel", NotificationChannel.allCases)
            self.status = try parse(status, "status", DeliveryStatus.allCases)
            let kinds = NotificationEvent.Kind.allCases.map(\.rawValue) + ["digest", "test"]
            if let kind, !kind.isEmpty {
                guard kinds.contains(kind) else { throw FlotillaError.validation("kind must be one of \(kinds.joined(separator: ", "))") }
                self.kind = kind
            }
        }
    }

    /// Deliveries, newest first, with their attempts.
    func deliveries(_ filter: DeliveryFilter, page: PageRequest) async throws -> Page<NotificationDelivery> {
        func query() -> QueryBuilder<NotificationDelivery> {
            var query = NotificationDelivery.query(on: database)
            if let channel = filter.channel { query = query.filter(\.$channel == channel) }
            if let status = filter.status { query = query.filter(\.$status == status) }
            if let kind = filter.kind { query = query.filter(\.$kind == kind) }
            return query
        }
        let total = try await query().count()
        let items = try await query().with(\.$attemptLog).sort(\.$createdAt, .descending)
            .range(page.offset..<(page.offset + page.per)).all()
        return Page(items: items, total: total, request: page)
    }

    func delivery(_ id: UUID) async throws -> NotificationDelivery {
        guard let delivery = try await NotificationDelivery.query(on: database).filter(\.$id == id).with(\.$attemptLog).first() else {
            throw FlotillaError.notFound("no such delivery")
        }
        return delivery
    }

    /// What the settings page shows about delivery: how much waits, how much failed, the last failure.
    struct Health: Sendable, Encodable {
        var mailServer: String?
        var queued: Int
        var failed: Int
        var lastFailure: String?
        var lastFailureAt: Date?
    }

    func health() async throws -> Health {
        let queued = try await NotificationDelivery.query(on: database).filter(\.$status ~~ [.queued, .sending]).count()
        let failed = try await NotificationDelivery.query(on: database).filter(\.$status == .failed).count()
        let last = try await NotificationAttempt.query(on: database).filter(\.$outcome != .delivered).sort(\.$at, .descending)
            .with(\.$delivery).first()
        return Health(
            mailServer: smtp.map { "\($0.host):\($0.port) (\($0.security.rawValue))" }, queued: queued, failed: failed,
            lastFailure: last.map { "\($0.delivery.channel.rawValue) to \($0.delivery.target): \($0.error ?? "failed")" },
            lastFailureAt: last?.at)
    }

    /// Runs a change and logs its outcome: the success details it returns, or why it was refused.
    private func audited<Value>(_ action: String, _ attempt: String, _ change: () async throws -> (Value, String)) async throws -> Value {
        do {
            let (value, details) = try await change()
            await AuditLog.record(.operation, action: action, result: .success, details: details, by: actor, on: database, logger: logger)
            return value
        } catch let error as FlotillaError {
            await AuditLog.record(
                .operation, action: action, result: .failure, details: "\(attempt) failed: \(error.message)", by: actor,
                on: database, logger: logger)
            throw error
        }
    }
}

extension Application {
    /// The notification policy for work outside a request (agents' events, jobs, the worker).
    var notifications: Notifications {
        Notifications(
            database: db, secrets: flotilla.secrets, smtp: flotilla.config.smtp,
            displayTime: DisplayTime(timeZone: flotilla.config.displayTimeZone), actor: .system, logger: logger,
            worker: storage[NotificationWorker.Key.self])
    }
}

extension Request {
    /// The notification policy, acting as this request's user.
    var notifications: Notifications {
        let app = application
        return Notifications(
            database: db, secrets: app.flotilla.secrets, smtp: app.flotilla.config.smtp,
            displayTime: DisplayTime(timeZone: app.flotilla.config.displayTimeZone), actor: auditActor, logger: logger,
            worker: app.storage[NotificationWorker.Key.self])
    }
}
