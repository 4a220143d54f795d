import Fluent
import Foundation

/// A webhook endpoint. The secret signing its requests is sealed with `SecretBox` and shown
/// only in the answer that creates it.
final class Webhook: Model, @unchecked Sendable {
    static let schema = "webhooks"

    @ID(key: .id) var id: UUID?
    @Field(key: "name") var name: String
    @Field(key: "url") var url: String
    @Field(key: "sealed_secret") var sealedSecret: String
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?

    init() {}

    init(name: String, url: String, sealedSecret: String) {
        self.name = name
        self.url = url
        self.sealedSecret = sealedSecret
    }
}

/// Notification settings changed at run time (one row; absent means the defaults).
final class NotificationSettings: Model, @unchecked Sendable {
    static let schema = "notification_settings"
    /// At most one message per service per this many seconds (SPEC BEY-6 asks for 10 minutes).
    static let defaultRateLimitSeconds = 600
    static let rateLimitRange = 1...86_400

    @ID(key: .id) var id: UUID?
    @Field(key: "rate_limit_seconds") var rateLimitSeconds: Int
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}

    init(rateLimitSeconds: Int) {
        self.rateLimitSeconds = rateLimitSeconds
    }
}

/// What became of a published event.
enum NotificationEventState: String, Codable, Sendable {
    /// Sent in a message of its own.
    case sent
    /// Held back by the rate limit, for the stream's next digest.
    case pending
    /// Sent as part of a digest.
    case digested
}

/// A published event as stored (`NotificationEvent` is what callers hand in).
final class NotificationEventRecord: Model, @unchecked Sendable {
    static let schema = "notification_events"

    @ID(key: .id) var id: UUID?
    @Field(key: "fingerprint") var fingerprint: String
    @Field(key: "stream") var stream: String
    @Field(key: "source") var source: String
    @Field(key: "kind") var kind: String
    @OptionalField(key: "vm_name") var vmName: String?
    @OptionalField(key: "vm_role") var vmRole: String?
    @OptionalField(key: "host_ip") var hostIP: String?
    @OptionalField(key: "service") var service: String?
    @OptionalField(key: "attempts") var attempts: Int?
    @OptionalField(key: "outage_started_at") var outageStartedAt: Date?
    @Field(key: "occurred_at") var occurredAt: Date
    @OptionalField(key: "details") var details: String?
    /// User names, comma-separated; nil means the system administrators.
    @OptionalField(key: "owners") var owners: String?
    @Enum(key: "state") var state: NotificationEventState
    /// The message it went out in.
    @OptionalField(key: "message_id") var messageID: UUID?
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?

    init() {}
}

/// When the last message of a stream (one service on one VM) was sent.
final class NotificationStream: Model, @unchecked Sendable {
    static let schema = "notification_streams"

    @ID(key: .id) var id: UUID?
    @Field(key: "key") var key: String
    @Field(key: "last_message_at") var lastMessageAt: Date

    init() {}
}

enum NotificationChannel: String, Codable, CaseIterable, Sendable {
    case email, webhook
}

enum DeliveryStatus: String, Codable, CaseIterable, Sendable {
    /// Waiting for its (next) attempt.
    case queued
    /// An instance is sending it now (until `claimedUntil`).
    case sending
    case delivered
    /// Given up: a permanent refusal, or too many attempts.
    case failed
}

/// One message to one recipient or webhook, in the durable queue; its attempts are the delivery log.
final class NotificationDelivery: Model, @unchecked Sendable {
    static let schema = "notification_deliveries"

    @ID(key: .id) var id: UUID?
    /// Deliveries of the same message (one per recipient) share it.
    @Field(key: "message_id") var messageID: UUID
    /// The event kind, `digest` or `test`.
    @Field(key: "kind") var kind: String
    @Enum(key: "channel") var channel: NotificationChannel
    @OptionalField(key: "webhook_id") var webhookID: UUID?
    /// The e-mail address, or the webhook's name.
    @Field(key: "target") var target: String
    @Field(key: "subject") var subject: String
    /// Plain text for mail, the JSON document for a webhook.
    @Field(key: "body") var body: String
    @Enum(key: "status") var status: DeliveryStatus
    @Field(key: "attempts") var attempts: Int
    @Field(key: "next_attempt_at") var nextAttemptAt: Date
    @OptionalField(key: "claimed_until") var claimedUntil: Date?
    @OptionalField(key: "last_status_code") var lastStatusCode: Int?
    @OptionalField(key: "last_error") var lastError: String?
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @OptionalField(key: "delivered_at") var deliveredAt: Date?
    @Children(for: \.$delivery) var attemptLog: [NotificationAttempt]

    init() {}

    init(
        messageID: UUID, kind: String, channel: NotificationChannel, webhookID: UUID?, target: String, subject: String, body: String,
        now: Date
    ) {
        self.messageID = messageID
        self.kind = kind
        self.channel = channel
        self.webhookID = webhookID
        self.target = target
        self.subject = subject
        self.body = body
        self.status = .queued
        self.attempts = 0
        self.nextAttemptAt = now
    }
}

/// How one attempt ended.
enum AttemptOutcome: String, Codable, Sendable {
    case delivered
    /// Failed for now; another attempt is scheduled.
    case retry
    /// Failed for good.
    case failed
}

/// One attempt of one delivery (the delivery log).
final class NotificationAttempt: Model, @unchecked Sendable {
    static let schema = "notification_attempts"

    @ID(key: .id) var id: UUID?
    @Parent(key: "delivery_id") var delivery: NotificationDelivery
    @Field(key: "number") var number: Int
    @Field(key: "at") var at: Date
    @Enum(key: "outcome") var outcome: AttemptOutcome
    /// The HTTP status (webhooks) or SMTP reply code (mail), when there was one.
    @OptionalField(key: "status_code") var statusCode: Int?
    @OptionalField(key: "error") var error: String?
    @Field(key: "milliseconds") var milliseconds: Int

    init() {}

    init(deliveryID: UUID, number: Int, at: Date, outcome: AttemptOutcome, statusCode: Int?, error: String?, milliseconds: Int) {
        self.$delivery.id = deliveryID
        self.number = number
        self.at = at
        self.outcome = outcome
        self.statusCode = statusCode
        self.error = error
        self.milliseconds = milliseconds
    }
}
