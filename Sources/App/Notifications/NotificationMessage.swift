import Foundation

/// One message about one or more events of a stream: the mail's subject and text, the
/// webhook's JSON document, and whom it concerns.
struct NotificationMessage: Sendable {
    /// The event kind, `digest` or `test`.
    var kind: String
    var subject: String
    var text: String
    var json: String
    /// User names of the owners; empty means the system administrators.
    var owners: [String]

    /// A message for one event, or a digest of several of one stream (oldest first).
    init(events: [NotificationEvent], window: Int, time: DisplayTime) {
        let first = events[0]
        let place = Self.place(of: first)
        owners = Array(Set(events.flatMap(\.owners))).sorted()
        if events.count == 1 {
            kind = first.kind.rawValue
            subject = "[Flotilla] " + Self.headline(first)
            var lines = [Self.headline(first) + ".", ""]
            lines += Self.fields(first, time: time)
            text = lines.joined(separator: "\n") + "\n"
        } else {
            kind = "digest"
            subject = "[Flotilla] \(place): \(events.count) events (digest)"
            var lines = [
                "\(events.count) events for \(place) since the last message (at most one message per service every "
                    + Self.duration(window) + "):", "",
            ]
            lines += events.map { event in
                var line = "- \(time.string(event.occurredAt)) \(event.kind.phrase)"
                if let attempts = event.attempts { line += ", attempts: \(attempts)" }
                if let details = event.details { line += " — \(details)" }
                return line
            }
            lines += ["", "Latest:"] + Self.fields(events[events.count - 1], time: time)
            text = lines.joined(separator: "\n") + "\n"
        }
        json = Self.document(type: events.count == 1 ? "event" : "digest", subject: subject, events: events)
    }

    private init(kind: String, subject: String, text: String, json: String) {
        self.kind = kind
        self.subject = subject
        self.text = text
        self.json = json
        owners = []
    }

    /// The message of a "send test" button.
    static func test(channel: String, server: String, by name: String?) -> NotificationMessage {
        let subject = "[Flotilla] Test notification"
        let text = "This is a test \(channel) from Flotilla (\(server)), sent by \(name ?? "the system").\n"
        return NotificationMessage(kind: "test", subject: subject, text: text, json: document(type: "test", subject: subject, events: []))
    }

    /// `redis on web-1 (10.77.0.5) was restarted after 2 attempts`.
    static func headline(_ event: NotificationEvent) -> String {
        var line = "\(place(of: event)) \(event.kind.phrase)"
        if let attempts = event.attempts, [.restarted, .recovered, .gaveUp].contains(event.kind) {
            line += " after \(attempts) attempt\(attempts == 1 ? "" : "s")"
        }
        return line
    }

    private static func place(of event: NotificationEvent) -> String {
        let machine: String
        switch (event.vmName, event.hostIP) {
        case (let name?, let ip?): machine = "\(name) (\(ip))"
        case (let name?, nil): machine = name
        case (nil, let ip?): machine = ip
        case (nil, nil): machine = "unknown VM"
        }
        return event.service.map { "\($0) on \(machine)" } ?? machine
    }

    private static func fields(_ event: NotificationEvent, time: DisplayTime) -> [String] {
        var rows: [(String, String?)] = [
            ("VM", event.vmName), ("Role", event.vmRole), ("Host IP", event.hostIP), ("Service", event.service),
            ("Attempts", event.attempts.map(String.init)),
        ]
        if let start = event.outageStartedAt {
            let seconds = Int(event.occurredAt.timeIntervalSince(start).rounded())
            rows.append(("Outage", "from \(time.string(start)) (\(duration(max(0, seconds))))"))
        }
        rows += [
            ("Time", "\(time.string(event.occurredAt)) (\(time.timeZone.identifier))"), ("Source", event.source.rawValue),
            ("Details", event.details),
        ]
        return rows.compactMap { label, value in value.map { (label + ":").padding(toLength: 10, withPad: " ", startingAt: 0) + $0 } }
    }

    static func duration(_ seconds: Int) -> String {
        if seconds < 120 { return "\(seconds) s" }
        if seconds < 7200 { return "\(seconds / 60) min" }
        return "\(seconds / 3600) h"
    }

    /// The webhook body: `{"type":"event"|"digest"|"test","subject":…,"events":[…]}`, times in ISO 8601.
    private static func document(type: String, subject: String, events: [NotificationEvent]) -> String {
        struct Document: Encodable {
            var type: String
            var subject: String
            var events: [NotificationEvent]
        }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(Document(type: type, subject: subject, events: events))) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
