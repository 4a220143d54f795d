import AsyncHTTPClient
import Crypto
import Fluent
import Mail
import NIOCore
import SQLKit
import Vapor

/// Delivers the queued notifications: mail through the Mail library, webhooks through
/// AsyncHTTPClient. A serving instance delivers at once what it publishes (`kick`); retries
/// and digests run once a second as a periodic task, on one instance of the cluster. Each
/// delivery is claimed with a conditional update before it is sent, so two rounds or two
/// instances never send one twice; a claim left by a dead instance expires. A slow or dead
/// mail server holds up only its own deliveries, never a publisher.
actor NotificationWorker {
    struct Key: StorageKey {
        typealias Value = NotificationWorker
    }

    /// When failed attempts are retried: exponential backoff, capped, then given up.
    struct RetryPolicy: Sendable {
        var firstDelay: Duration = .seconds(2)
        var maximumDelay: Duration = .seconds(600)
        /// 2 s, 4 s … 512 s, then every 10 minutes: about an hour in all.
        var maximumAttempts = 15

        func delay(after attempts: Int) -> TimeInterval {
            let first = Double(firstDelay.components.seconds) + Double(firstDelay.components.attoseconds) / 1e18
            let cap = Double(maximumDelay.components.seconds)
            return min(cap, first * pow(2, Double(max(0, attempts - 1))))
        }
    }

    static let batchSize = 32
    /// How long a claimed delivery stays with its instance before another may take it over.
    static let claimSeconds: TimeInterval = 300
    static let webhookTimeout: TimeAmount = .seconds(10)
    static let mailTimeouts = SMTPTimeouts(connect: .seconds(5), command: .seconds(30), total: .seconds(60))

    private let notifications: @Sendable () -> Notifications
    private let database: any Database
    private let secrets: SecretBox
    private let smtp: FlotillaConfig.SMTP?
    private let logger: Logger
    private let retry: RetryPolicy
    private let httpClient: HTTPClient
    private var draining: Task<Void, Never>?
    private var runAgain = false
    private var stopped = false

    init(
        database: any Database, secrets: SecretBox, smtp: FlotillaConfig.SMTP?, logger: Logger, retry: RetryPolicy = RetryPolicy(),
        notifications: @escaping @Sendable () -> Notifications
    ) {
        self.database = database
        self.secrets = secrets
        self.smtp = smtp
        self.logger = logger
        self.retry = retry
        self.notifications = notifications
        // Redirects are not followed: a signed request goes only where it was configured to go.
        httpClient = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(
                redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: Self.webhookTimeout)))
    }

    /// Cancels the current round (a send cut short is queued again, so a hanging mail server
    /// cannot hold up a shutdown), closes the HTTP client; later kicks do nothing.
    func stop() async {
        stopped = true
        runAgain = false
        draining?.cancel()
        await draining?.value
        try? await httpClient.shutdown()
    }

    /// Asks for a delivery round soon; returns at once.
    nonisolated func kick() {
        Task { await self.requestRun() }
    }

    private func requestRun() {
        guard !stopped else { return }
        guard draining == nil else {
            runAgain = true
            return
        }
        draining = Task {
            repeat {
                runAgain = false
                await runOnce()
            } while runAgain && !stopped
            draining = nil
        }
    }

    /// One round: due digests, then every due delivery this instance can claim, sent in parallel.
    func runOnce() async {
        guard !stopped else { return }
        do {
            try await notifications().sendDueDigests()
            let claimed = try await claimDue(now: Date())
            await withTaskGroup(of: Void.self) { group in
                for delivery in claimed {
                    group.addTask { await self.deliver(delivery) }
                }
            }
        } catch {
            logger.error("notification delivery round failed: \(String(reflecting: error))")
        }
    }

    private func claimDue(now: Date) async throws -> [NotificationDelivery] {
        guard let sql = database as? any SQLDatabase else { return [] }
        let candidates = try await NotificationDelivery.query(on: database)
            .group(.or) { group in
                group.group(.and) { $0.filter(\.$status == .queued).filter(\.$nextAttemptAt <= now) }
                group.group(.and) { $0.filter(\.$status == .sending).filter(\.$claimedUntil < now) }
            }
            .sort(\.$nextAttemptAt).limit(Self.batchSize).all()
        var claimed: [NotificationDelivery] = []
        for candidate in candidates {
            let rows = try await sql.update(NotificationDelivery.schema)
                .set("status", to: DeliveryStatus.sending.rawValue)
                .set("claimed_until", to: now.addingTimeInterval(Self.claimSeconds))
                .where("id", .equal, try candidate.requireID())
                .where("status", .equal, candidate.status.rawValue)
                .returning("id")
                .all()
            if !rows.isEmpty { claimed.append(candidate) }
        }
        return claimed
    }

    /// What one attempt came to.
    private struct Result {
        var statusCode: Int?
        var error: String?
        /// Whether a later attempt may succeed (server away, 4xx mail reply, 5xx/429 HTTP).
        var transient: Bool

        static func delivered(_ code: Int?) -> Result { Result(statusCode: code, error: nil, transient: false) }
    }

    private func deliver(_ delivery: NotificationDelivery) async {
        let started = ContinuousClock.now
        let result: Result
        switch delivery.channel {
        case .email: result = await sendMail(delivery)
        case .webhook: result = await post(delivery)
        }
        let elapsed = ContinuousClock.now - started
        await record(
            result, of: delivery,
            milliseconds: Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000))
    }

    private func sendMail(_ delivery: NotificationDelivery) async -> Result {
        guard let smtp else {
            return Result(statusCode: nil, error: "mail is not configured (FLOTILLA_SMTP_HOST)", transient: false)
        }
        let server = SMTPServer(
            host: smtp.host, port: smtp.port, security: smtp.security,
            trust: smtp.certificateAuthorityFile.map { .certificateAuthorities(pemFile: $0) } ?? .systemRoots,
            credentials: smtp.username.map { SMTPCredentials(username: $0, password: smtp.password ?? "") })
        do {
            let message = try MailMessage(
                from: smtp.from, to: [try EmailAddress(delivery.target)], subject: delivery.subject, body: delivery.body)
            let sent = try await SMTPClient(server: server, timeouts: Self.mailTimeouts, logger: logger).send(message)
            return .delivered(sent.reply.code)
        } catch let error as MailError {
            return Result(statusCode: error.reply?.code, error: error.description, transient: error.isTransient)
        } catch is CancellationError {
            return Result(statusCode: nil, error: "cut short: this instance is shutting down", transient: true)
        } catch {
            return Result(statusCode: nil, error: String(describing: error), transient: true)
        }
    }

    private func post(_ delivery: NotificationDelivery) async -> Result {
        guard let webhookID = delivery.webhookID, let webhook = try? await Webhook.find(webhookID, on: database) else {
            return Result(statusCode: nil, error: "the webhook was deleted", transient: false)
        }
        let secret: String
        do {
            secret = try secrets.open(webhook.sealedSecret)
        } catch {
            return Result(statusCode: nil, error: FlotillaError.describe(error), transient: false)
        }
        var request = HTTPClientRequest(url: webhook.url)
        request.method = .POST
        let timestamp = String(Int(Date().timeIntervalSince1970))
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Flotilla-Webhook/1")
        request.headers.add(name: WebhookSignature.timestampHeader, value: timestamp)
        request.headers.add(
            name: WebhookSignature.signatureHeader, value: WebhookSignature.sign(body: delivery.body, timestamp: timestamp, secret: secret))
        request.headers.add(name: "X-Flotilla-Delivery", value: delivery.id?.uuidString ?? "")
        request.body = .bytes(ByteBuffer(string: delivery.body))
        do {
            let response = try await httpClient.execute(request, timeout: Self.webhookTimeout)
            // Read (and drop) the answer so the connection can be reused; its size is bounded.
            _ = try? await response.body.collect(upTo: 64 * 1024)
            let code = Int(response.status.code)
            switch code {
            case 200..<300: return .delivered(code)
            case 408, 429, 500..<600:
                return Result(statusCode: code, error: "the webhook answered \(code)", transient: true)
            case 300..<400:
                return Result(statusCode: code, error: "the webhook answered \(code); redirects are not followed", transient: false)
            default:
                return Result(statusCode: code, error: "the webhook answered \(code)", transient: false)
            }
        } catch {
            return Result(statusCode: nil, error: "the webhook could not be reached: \(String(describing: error))", transient: true)
        }
    }

    /// Writes the attempt to the delivery log and the delivery's new state: delivered, queued
    /// again after a backoff, or failed (audited as an error: nobody may hear about this event).
    private func record(_ result: Result, of delivery: NotificationDelivery, milliseconds: Int) async {
        let now = Date()
        delivery.attempts += 1
        delivery.claimedUntil = nil
        delivery.lastStatusCode = result.statusCode
        delivery.lastError = result.error
        let outcome: AttemptOutcome
        if result.error == nil {
            outcome = .delivered
            delivery.status = .delivered
            delivery.deliveredAt = now
        } else if result.transient && delivery.attempts < retry.maximumAttempts {
            outcome = .retry
            delivery.status = .queued
            delivery.nextAttemptAt = now.addingTimeInterval(retry.delay(after: delivery.attempts))
        } else {
            outcome = .failed
            delivery.status = .failed
        }
        do {
            let deliveryID = try delivery.requireID()
            try await database.transaction { transaction in
                try await delivery.save(on: transaction)
                try await NotificationAttempt(
                    deliveryID: deliveryID, number: delivery.attempts, at: now, outcome: outcome, statusCode: result.statusCode,
                    error: result.error, milliseconds: milliseconds
                ).create(on: transaction)
            }
        } catch {
            logger.error("could not record a notification delivery attempt: \(String(reflecting: error))")
        }
        guard let error = result.error else { return }
        let what = "\(delivery.channel.rawValue) '\(delivery.subject)' to \(delivery.target)"
        if outcome == .failed {
            logger.error("notification \(what) failed for good after \(delivery.attempts) attempt(s): \(error)")
            await AuditLog.record(
                .error, action: "notification.delivery", result: .failure,
                details: "\(what) failed after \(delivery.attempts) attempt(s): \(error)", by: .system, on: database, logger: logger)
        } else {
            logger.warning("notification \(what), attempt \(delivery.attempts) failed (will retry): \(error)")
        }
    }
}

/// The signature of a webhook request: `X-Flotilla-Signature: sha256=<hex>` where hex is
/// HMAC-SHA256 under the webhook's secret of `<timestamp>.<body>`, and `X-Flotilla-Timestamp`
/// is that timestamp (Unix seconds). A receiver recomputes it and refuses old timestamps, so a
/// recorded request cannot be replayed later.
enum WebhookSignature {
    static let signatureHeader = "X-Flotilla-Signature"
    static let timestampHeader = "X-Flotilla-Timestamp"

    static func sign(body: String, timestamp: String, secret: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data("\(timestamp).\(body)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + code.hex
    }
}

/// Starts the delivery worker in a serving process (with its once-a-second round as the
/// periodic task `notification-delivery`) and stops it at shutdown.
struct NotificationLifecycle: LifecycleHandler {
    static let periodicTask = "notification-delivery"

    func didBootAsync(_ app: Application) async throws {
        guard app.startsServer else { return }
        let worker = NotificationWorker(
            database: app.db, secrets: app.flotilla.secrets, smtp: app.flotilla.config.smtp, logger: app.logger,
            notifications: { app.notifications })
        app.storage[NotificationWorker.Key.self] = worker
        try app.periodic.register(name: Self.periodicTask, interval: .seconds(1)) { _ in
            await worker.runOnce()
        }
    }

    func shutdownAsync(_ app: Application) async {
        await app.storage[NotificationWorker.Key.self]?.stop()
    }
}
