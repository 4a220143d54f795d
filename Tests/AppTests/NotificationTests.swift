import Crypto
import Fluent
import XCTVapor

@testable import App

/// Notifications (SPEC BEY-6) against real servers: aiosmtpd with STARTTLS and AUTH, and a
/// local HTTP receiver that checks each webhook request's signature.
final class NotificationTests: XCTestCase {
    private func event(
        _ kind: NotificationEvent.Kind = .restarted, service: String = "redis", attempts: Int? = 2, owners: [String] = [],
        at time: Date = Date()
    ) -> NotificationEvent {
        NotificationEvent(
            source: .agent, kind: kind, vmName: "web-1", vmRole: "web", hostIP: "10.77.0.5", service: service, attempts: attempts,
            outageStartedAt: time.addingTimeInterval(-3), occurredAt: time, owners: owners)
    }

    private func smtpSettings(_ server: NotificationSMTPServer, starttls: Bool) -> [String: String] {
        var values = [
            "FLOTILLA_SMTP_HOST": "127.0.0.1", "FLOTILLA_SMTP_PORT": "\(server.port)", "FLOTILLA_SMTP_FROM": "flotilla@example.com",
        ]
        if starttls {
            values["FLOTILLA_SMTP_SECURITY"] = "starttls"
            values["FLOTILLA_SMTP_USER"] = NotificationSMTPServer.user
            values["FLOTILLA_SMTP_PASSWORD"] = NotificationSMTPServer.password
            values["FLOTILLA_SMTP_CA_FILE"] = server.certificateAuthorityFile
        } else {
            values["FLOTILLA_SMTP_SECURITY"] = "none"
        }
        return values
    }

    /// Waits until the deliveries satisfy `done`, and returns them with their attempts.
    private func deliveries(
        _ app: Application, timeout: TimeInterval = 20, until done: ([NotificationDelivery]) -> Bool
    ) async throws -> [NotificationDelivery] {
        let deadline = Date().addingTimeInterval(timeout)
        var current: [NotificationDelivery] = []
        while Date() < deadline {
            current = try await NotificationDelivery.query(on: app.db).with(\.$attemptLog).sort(\.$createdAt).all()
            if done(current) { return current }
            try await Task.sleep(for: .milliseconds(50))
        }
        return current
    }

    func testOwnerGetsTheMailOverSTARTTLSWithAuthenticationWithHostServiceAndAttempts() async throws {
        let server = try NotificationSMTPServer()
        try server.start(starttls: true)
        try await TestApp.run(smtpSettings(server, starttls: true)) { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            let created = try await admin.request(
                .POST, "/api/v1/users",
                json: API.NewUser(
                    username: "olga", password: "password-123", passwordConfirmation: "password-123", role: "ordinary",
                    email: "olga@example.com", fullName: "Olga Owner"))
            XCTAssertEqual(created.status, .created, created.body.string)

            // How fast is scripts/bench-notifications' business; here only that it arrives.
            let outcome = try await app.notifications.publish(event(owners: ["olga"]))
            XCTAssertEqual(outcome, .queued(deliveries: 1), "one owner with an address, no webhook")
            let messages = try await server.waitForMessages(1)
            let message = try XCTUnwrap(messages.first)
            XCTAssertEqual(message.rcpt_tos, ["olga@example.com"])
            XCTAssertTrue(message.tls, "STARTTLS was used")
            XCTAssertTrue(message.authenticated, "AUTH was used")
            XCTAssertTrue(message.subject.contains("redis on web-1 (10.77.0.5) was restarted after 2 attempts"), message.subject)
            let body = try XCTUnwrap(message.body)
            for line in ["Host IP:  10.77.0.5", "Service:  redis", "Attempts: 2", "Role:     web", "Outage:   from"] {
                XCTAssertTrue(body.contains(line), "\(line) in \(body)")
            }
            let logged = try await deliveries(app) { $0.first?.status == .delivered }
            XCTAssertEqual(logged.first?.attemptLog.map(\.statusCode), [250], "the delivery log keeps the server's reply code")
        }
    }

    func testWebhookIsSignedAndRetriedWithBackoffAndItsSecretIsShownOnce() async throws {
        let receiver = try await WebhookReceiver(statuses: [.internalServerError, .ok])
        defer { Task { await receiver.stop() } }
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            let created = try await admin.request(.POST, "/api/v1/webhooks", json: API.NewWebhook(name: "ops", url: receiver.url))
            XCTAssertEqual(created.status, .created, created.body.string)
            let webhook = try admin.decode(API.WebhookBody.self, created)
            let secret = try XCTUnwrap(webhook.secret)
            XCTAssertTrue(secret.hasPrefix("whsec_"))
            let listed = try await admin.request(.GET, "/api/v1/webhooks")
            XCTAssertFalse(listed.body.string.contains(secret), "the secret is answered once only")
            let settingsPage = try await admin.request(.GET, "/settings/notifications")
            XCTAssertFalse(settingsPage.body.string.contains(secret))
            let stored = try await Webhook.query(on: app.db).first()
            XCTAssertNotEqual(stored?.sealedSecret, secret, "stored sealed")

            try await app.notifications.publish(event(.gaveUp, attempts: 5))
            let requests = try await receiver.waitForRequests(2)
            XCTAssertEqual(requests.count, 2, "a 500 is retried")
            for request in requests {
                let timestamp = try XCTUnwrap(request.headers.first(name: "X-Flotilla-Timestamp"))
                let signature = try XCTUnwrap(request.headers.first(name: "X-Flotilla-Signature"))
                let expected = HMAC<SHA256>.authenticationCode(
                    for: Data("\(timestamp).\(request.body)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
                XCTAssertEqual(signature, "sha256=" + expected.map { String(format: "%02x", $0) }.joined())
                let age = Date().timeIntervalSince1970 - (Double(timestamp) ?? 0)
                XCTAssertTrue((0..<60).contains(age), "a fresh timestamp: \(age) s old")
                XCTAssertEqual(request.headers.first(name: .contentType), "application/json")
                let forged = HMAC<SHA256>.authenticationCode(
                    for: Data("\(timestamp).\(request.body) ".utf8), using: SymmetricKey(data: Data(secret.utf8)))
                XCTAssertNotEqual(signature, "sha256=" + forged.map { String(format: "%02x", $0) }.joined(), "the body is covered")
            }
            let gap = requests[1].at.timeIntervalSince(requests[0].at)
            XCTAssertGreaterThanOrEqual(gap, 1.9, "the retry waits for its backoff")
            struct Body: Decodable {
                var type: String
                var events: [NotificationEvent]
            }
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            let body = try decoder.decode(Body.self, from: Data(requests[1].body.utf8))
            XCTAssertEqual(body.type, "event")
            XCTAssertEqual(body.events.first?.service, "redis")
            XCTAssertEqual(body.events.first?.hostIP, "10.77.0.5")
            XCTAssertEqual(body.events.first?.kind, .gaveUp)

            let logged = try await deliveries(app) { $0.first?.status == .delivered }
            let delivery = try XCTUnwrap(logged.first)
            let log = try admin.decode(
                API.DeliveryBody.self, try await admin.request(.GET, "/api/v1/notifications/deliveries/\(try delivery.requireID())"))
            XCTAssertEqual(log.attemptLog.map(\.statusCode), [500, 200])
            XCTAssertEqual(log.attemptLog.map(\.outcome), ["retry", "delivered"])
            let page = try await admin.request(.GET, "/settings/notifications/deliveries?channel=webhook&status=delivered")
            XCTAssertEqual(page.status, .ok)
            XCTAssertTrue(page.body.string.contains("retry 500") && page.body.string.contains("delivered 200"), page.body.string)
            XCTAssertTrue(page.body.string.contains(#"<option value="">any</option>"#), "an unset filter reads \"any\"")
            let filtered = try admin.decode(
                ListResponse<API.DeliveryBody>.self, try await admin.request(.GET, "/api/v1/notifications/deliveries?status=failed"))
            XCTAssertEqual(filtered.total, 0)
            let badFilter = try await admin.request(.GET, "/api/v1/notifications/deliveries?status=lost")
            XCTAssertEqual(badFilter.status, .badRequest)

            // The test button: a signed request of type "test".
            let test = try await admin.request(.POST, "/api/v1/webhooks/\(webhook.id)/test")
            XCTAssertEqual(test.status, .accepted, test.body.string)
            let afterTest = try await receiver.waitForRequests(3)
            XCTAssertTrue(afterTest.last?.body.contains(#""type":"test""#) ?? false)
        }
    }

    /// The delivery task once took the event of a brand-new stream while its `publish` was
    /// between storing and sending it, and `publish` then reported the event as held back.
    func testTheDeliveryTaskLeavesAnEventWhosePublishIsStillRunning() async throws {
        try await TestApp.run { app in
            let inFlight = event(service: "memcached")
            try await NotificationEventRecord(inFlight, state: .pending).create(on: app.db)
            try await app.notifications.sendDueDigests()
            let untouched = try await NotificationEventRecord.query(on: app.db).filter(\.$state == .pending).count()
            XCTAssertEqual(untouched, 1, "the stream belongs to the publish that stored the event")

            let later = Date().addingTimeInterval(Notifications.abandonedPublishSeconds + 1)
            try await app.notifications.sendDueDigests(now: later)
            let left = try await NotificationEventRecord.query(on: app.db).filter(\.$state == .pending).count()
            XCTAssertEqual(left, 0, "an event its publisher left behind is sent by the delivery task")
        }
    }

    func testAStormBecomesOneMessageAndOneDigestAndRepeatsAreDropped() async throws {
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.stop() } }
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            let zero = try await admin.request(
                .PATCH, "/api/v1/notifications/settings", json: API.NotificationSettingsChange(rateLimitSeconds: 0))
            XCTAssertEqual(zero.status, .badRequest)
            let changed = try await admin.request(
                .PATCH, "/api/v1/notifications/settings", json: API.NotificationSettingsChange(rateLimitSeconds: 3))
            XCTAssertEqual(try admin.decode(API.NotificationSettingsBody.self, changed).rateLimitSeconds, 3)
            let added = try await admin.request(.POST, "/api/v1/webhooks", json: API.NewWebhook(name: "ops", url: receiver.url))
            XCTAssertEqual(added.status, .created)

            let start = Date()
            var outcomes: [Notifications.PublishOutcome] = []
            for index in 0..<50 {
                outcomes.append(try await app.notifications.publish(event(at: start.addingTimeInterval(Double(index) * 0.01))))
            }
            XCTAssertEqual(outcomes.first, .queued(deliveries: 1))
            XCTAssertEqual(outcomes.dropFirst().filter { $0 == .heldForDigest }.count, 49)
            let repeated = try await app.notifications.publish(event(at: start))
            XCTAssertEqual(repeated, .duplicate, "the same event published again is dropped")
            let other = try await app.notifications.publish(event(service: "nginx", at: start))
            XCTAssertEqual(other, .queued(deliveries: 1), "another service has its own window")

            let requests = try await receiver.waitForRequests(3)
            try await Task.sleep(for: .seconds(4))
            XCTAssertEqual(receiver.received.count, 3, "one message per service and one digest, not 50")
            struct Body: Decodable {
                var type: String
                var subject: String
                var events: [NotificationEvent]
            }
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            let bodies = try requests.map { try decoder.decode(Body.self, from: Data($0.body.utf8)) }
            let redis = bodies.filter { $0.events.first?.service == "redis" }
            XCTAssertEqual(redis.map(\.type), ["event", "digest"])
            XCTAssertEqual(redis.last?.events.count, 49)
            XCTAssertTrue(redis.last?.subject.contains("49 events") ?? false)
            let sent = try await NotificationEventRecord.query(on: app.db).filter(\.$state == .pending).count()
            XCTAssertEqual(sent, 0)
        }
    }

    func testMailWaitsInTheQueueWhileTheServerIsDownAndSurvivesARestart() async throws {
        let server = try NotificationSMTPServer()
        let dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("flotilla-test-\(UUID().uuidString)").path
        var settings = smtpSettings(server, starttls: false)
        settings["FLOTILLA_DATA_DIR"] = dataDirectory
        let first = try await TestApp.make(settings)
        do {
            let admin = try TestClient(first)
            try await admin.signIn("admin", TestApp.adminPassword)
            let adminUser = try await User.query(on: first.db).filter(\.$username == "admin").first()
            let adminID = try XCTUnwrap(adminUser?.id)
            let addressed = try await admin.request(.PATCH, "/api/v1/users/\(adminID)", json: API.UserChanges(email: "admin@example.com"))
            XCTAssertEqual(addressed.status, .ok)
            let clock = ContinuousClock()
            let published = try await clock.measure { _ = try await first.notifications.publish(event()) }
            XCTAssertLessThan(published, .seconds(1), "publishing does not wait for the mail server")
            let failing = try await deliveries(first) { $0.first?.attempts ?? 0 >= 1 }
            XCTAssertEqual(failing.first?.status, .queued, "kept for another attempt")
            XCTAssertEqual(failing.first?.attemptLog.first?.outcome, .retry)
            let listing = try await clock.measure { _ = try await admin.request(.GET, "/api/v1/users") }
            XCTAssertLessThan(listing, .seconds(2), "nothing else waits for the mail server")
            let health = try admin.decode(
                API.NotificationSettingsBody.self, try await admin.request(.GET, "/api/v1/notifications/settings"))
            XCTAssertEqual(health.queued, 1)
            XCTAssertTrue(health.lastFailure?.contains("admin@example.com") ?? false, String(describing: health.lastFailure))
            let page = try await admin.request(.GET, "/settings")
            XCTAssertTrue(page.body.string.contains("Last failure"), "the failure is visible on the settings page")
        } catch {
            try await first.asyncShutdown()
            throw error
        }
        try await first.asyncShutdown()

        // The queue is in the database: a new server process delivers it once the mail server is back.
        try server.start(starttls: false)
        let second = try await TestApp.make(settings, freshDatabase: false)
        do {
            let messages = try await server.waitForMessages(1, timeout: 30)
            XCTAssertEqual(messages.map(\.rcpt_tos), [["admin@example.com"]])
            let delivered = try await deliveries(second) { $0.first?.status == .delivered }
            XCTAssertEqual(delivered.first?.attemptLog.last?.outcome, .delivered)
            XCTAssertGreaterThanOrEqual(delivered.first?.attemptLog.count ?? 0, 2)
        } catch {
            try await second.asyncShutdown()
            throw error
        }
        try await second.asyncShutdown()
    }

    func testAMailServerThatNeverAnswersDoesNotHoldUpTheShutdown() async throws {
        // A listening socket that never accepts: connections complete, no greeting ever comes.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 8) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        XCTAssertTrue(listening)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let settings = [
            "FLOTILLA_SMTP_HOST": "127.0.0.1", "FLOTILLA_SMTP_PORT": "\(port)", "FLOTILLA_SMTP_SECURITY": "none",
            "FLOTILLA_DATA_DIR": FileManager.default.temporaryDirectory.appendingPathComponent("flotilla-test-\(UUID().uuidString)").path,
        ]
        let app = try await TestApp.make(settings)
        let delivery: NotificationDelivery
        do {
            delivery = try await app.notifications.sendTestMail(to: "owner@example.com", from: nil)
            let sending = try await deliveries(app) { $0.first?.status == .sending }
            XCTAssertEqual(sending.first?.status, .sending, "the send hangs on the silent server")
        } catch {
            try await app.asyncShutdown()
            throw error
        }
        try await app.asyncShutdown()
        // What the stopped server left in the database.
        let reopened = try await TestApp.make(settings, freshDatabase: false)
        do {
            let stored = try await NotificationAttempt.query(on: reopened.db).filter(\.$delivery.$id == delivery.requireID())
                .filter(\.$number == 1).first()
            XCTAssertEqual(stored?.outcome, .retry, "the cut-short send is queued again, not left claimed")
            XCTAssertTrue(stored?.error?.contains("shutting down") ?? false, String(describing: stored?.error))
        } catch {
            try await reopened.asyncShutdown()
            throw error
        }
        try await reopened.asyncShutdown()
    }

    func testHostileValuesAreRefusedAndChangeNothing() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            for url in [
                "ftp://127.0.0.1/hook", "file:///etc/passwd", "javascript:alert(1)", "gopher://127.0.0.1/",
                "http://user:pass@127.0.0.1/hook",
                "https://token@127.0.0.1/hook", "http://127.0.0.1/a b", "http://127.0.0.1/a\r\nX-Evil: 1", "http:///nohost",
                "http://127.0.0.1/#fragment", "", "127.0.0.1/hook", "http://127.0.0.1/$(reboot)\n",
            ] {
                let response = try await admin.request(.POST, "/api/v1/webhooks", json: API.NewWebhook(name: "hook", url: url))
                XCTAssertEqual(response.status, .badRequest, "\(url): \(response.body.string)")
            }
            let badName = try await admin.request(.POST, "/api/v1/webhooks", json: API.NewWebhook(name: "a\nb", url: "http://127.0.0.1/"))
            XCTAssertEqual(badName.status, .badRequest)
            let webhooks = try await Webhook.query(on: app.db).count()
            XCTAssertEqual(webhooks, 0)

            for hostile in [
                "olga@example.com\r\nBcc: evil@example.com", "olga@example.com\nX: y", "$(reboot)@example.com", "a;rm -rf /@example.com",
                "olga@example.com; ls", "olga @example.com", "<olga@example.com>", "\"olga\"@example.com", "olga@evil@example.com",
                "olga@[127.0.0.1]", "olga@exa mple.com", "olga",
            ] {
                let response = try await admin.request(
                    .POST, "/api/v1/users",
                    json: API.NewUser(
                        username: "olga", password: "password-123", passwordConfirmation: "password-123", role: "ordinary", email: hostile))
                XCTAssertEqual(response.status, .badRequest, "\(hostile.debugDescription): \(response.body.string)")
            }
            let named = try await admin.request(
                .POST, "/api/v1/users",
                json: API.NewUser(
                    username: "olga", password: "password-123", passwordConfirmation: "password-123", role: "ordinary",
                    fullName: "Olga\r\nBcc: evil@example.com"))
            XCTAssertEqual(named.status, .badRequest)
            let users = try await User.query(on: app.db).count()
            XCTAssertEqual(users, 1, "nothing was created")

            for field in ["redis\r\nBcc: evil@example.com", "redis\u{0}", String(repeating: "r", count: 300)] {
                do {
                    try await app.notifications.publish(event(service: field))
                    XCTFail("\(field.debugDescription) was accepted")
                } catch let error as FlotillaError {
                    XCTAssertEqual(error.kind, .validation)
                }
            }
            do {
                try await app.notifications.publish(event(owners: ["$(reboot)"]))
                XCTFail("a hostile owner name was accepted")
            } catch let error as FlotillaError {
                XCTAssertEqual(error.kind, .validation)
            }
            let events = try await NotificationEventRecord.query(on: app.db).count()
            XCTAssertEqual(events, 0)
        }
    }

    func testOnlySystemAdministratorsManageNotifications() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            try await createUser(admin, "otto", role: .ordinary)
            let ordinary = try TestClient(app)
            try await ordinary.signIn("otto", "password-123")
            let attempts = [
                try await ordinary.request(.GET, "/api/v1/webhooks"),
                try await ordinary.request(.POST, "/api/v1/webhooks", json: API.NewWebhook(name: "x", url: "http://127.0.0.1/")),
                try await ordinary.request(
                    .PATCH, "/api/v1/notifications/settings", json: API.NotificationSettingsChange(rateLimitSeconds: 5)),
                try await ordinary.request(.POST, "/api/v1/notifications/test-mail", json: API.TestMail()),
                try await ordinary.request(.GET, "/api/v1/notifications/deliveries"),
                try await ordinary.request(.GET, "/settings/notifications"),
                try await ordinary.submit("/settings/notifications/webhooks", [("name", "x"), ("url", "http://127.0.0.1/")]),
            ]
            XCTAssertEqual(attempts.map(\.status), Array(repeating: .forbidden, count: attempts.count))
            let webhooks = try await Webhook.query(on: app.db).count()
            XCTAssertEqual(webhooks, 0)

            // Without a mail server the test button says what to set.
            let test = try await admin.request(.POST, "/api/v1/notifications/test-mail", json: API.TestMail(to: "a@example.com"))
            XCTAssertEqual(test.status, .badRequest)
            XCTAssertTrue(test.body.string.contains("FLOTILLA_SMTP_HOST"))

            // The web form shows the new secret once, on the answer page only.
            let created = try await admin.submit("/settings/notifications/webhooks", [("name", "ops"), ("url", "https://127.0.0.1/hook")])
            XCTAssertEqual(created.status, .created)
            let secret = try XCTUnwrap(created.body.string.firstMatch(of: /whsec_[A-Za-z0-9_-]+/)).output
            XCTAssertEqual(created.headers.first(name: .cacheControl), "no-store")
            let again = try await admin.request(.GET, "/settings/notifications")
            XCTAssertTrue(again.body.string.contains("ops"))
            XCTAssertFalse(again.body.string.contains(String(secret)))
            let audit = try await LogEntry.query(on: app.db).filter(\.$action == "webhook.add").all()
            XCTAssertEqual(audit.count, 1)
            XCTAssertFalse(audit[0].details.contains(String(secret)))
        }
    }
}
