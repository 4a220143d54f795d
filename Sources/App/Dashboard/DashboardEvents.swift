import Foundation
import Vapor

/// The dashboard's server-sent events (SPEC DASH-1): after the page's first render, only what
/// changed. Events: `summary` (role counts, on connect and after each batch of changes),
/// `change` (one VM's new health) and `reload` (the page fell too far behind). Each carries
/// the change sequence as its `id`, so the browser's automatic reconnect (`Last-Event-ID`)
/// resumes where it stopped; a comment line every `heartbeat` keeps proxies from closing an
/// idle stream and tells the server when the reader is gone. A client that does not accept
/// `text/event-stream` (EventSource always does) gets the same events once, as a snapshot.
enum DashboardEvents {
    static let heartbeat: Duration = .seconds(15)
    /// What the browser waits before reconnecting, in milliseconds.
    static let retryMilliseconds = 1000

    /// Where a stream starts: `Last-Event-ID` (a reconnect), else `since` (the sequence the page
    /// was rendered at), else now. Anything else is a validation error.
    static func startSequence(lastEventID: String?, since: String?) throws -> UInt64? {
        for text in [lastEventID, since] {
            guard let text, !text.isEmpty else { continue }
            guard let value = UInt64(text) else { throw FlotillaError.validation("since must be a change sequence number") }
            return value
        }
        return nil
    }

    static func response(for request: Request) throws -> Response {
        let since = try startSequence(
            lastEventID: request.headers.first(name: "Last-Event-ID"), since: QueryParameters(request.url.query).first("since"))
        let fleet = request.application.fleetStatus
        let logger = request.logger
        let follows = request.headers[.accept].contains { $0.lowercased().contains("text/event-stream") }
        var headers = HTTPHeaders()
        headers.contentType = HTTPMediaType(type: "text", subType: "event-stream", parameters: ["charset": "utf-8"])
        headers.cacheControl = HTTPHeaders.CacheControl(noCache: true, noStore: true)
        // nginx and similar proxies would otherwise hold events back in their buffers.
        headers.replaceOrAdd(name: "X-Accel-Buffering", value: "no")
        return Response(
            status: .ok, headers: headers,
            body: .init(asyncStream: { writer in
                await stream(fleet: fleet, since: since, follows: follows, to: writer, logger: logger)
            }))
    }

    private enum Signal {
        case changes, heartbeat
    }

    private static func stream(
        fleet: FleetStatus, since: UInt64?, follows: Bool, to writer: any AsyncBodyStreamWriter, logger: Logger
    ) async {
        let (subscription, wakeUps) = await fleet.subscribe()
        let (signals, signal) = AsyncStream.makeStream(of: Signal.self, bufferingPolicy: .bufferingNewest(2))
        let forwarding = Task {
            for await _ in wakeUps { signal.yield(.changes) }
            signal.finish()
        }
        let beating = Task {
            while !Task.isCancelled {
                do { try await Task.sleep(for: heartbeat) } catch { return }
                signal.yield(.heartbeat)
            }
        }
        var encoder = EventEncoder()
        let now = await fleet.summary().sequence
        var sent = since ?? now
        do {
            try await writer.write(.buffer(ByteBuffer(string: "retry: \(retryMilliseconds)\n\n")))
            try await writer.write(.buffer(encoder.catchUp(fleet: fleet, from: &sent, summaryAlways: true)))
            if !follows { signal.finish() }
            for await next in signals {
                switch next {
                case .heartbeat:
                    try await writer.write(.buffer(ByteBuffer(string: ": heartbeat\n\n")))
                case .changes:
                    try await writer.write(.buffer(encoder.catchUp(fleet: fleet, from: &sent, summaryAlways: false)))
                }
            }
            try await writer.write(.end)
        } catch {
            logger.debug("dashboard events: reader gone (\(error))")
            // A stream left without its end trips Vapor's assertion and stops a debug server.
            try? await writer.write(.error(error))
        }
        forwarding.cancel()
        beating.cancel()
        await fleet.unsubscribe(subscription)
    }

    /// Writes events as text, remembering the last summary sent so an unchanged one is skipped.
    private struct EventEncoder {
        var lastSummary: FleetStatus.Summary?
        let json: JSONEncoder = {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            return encoder
        }()

        mutating func catchUp(fleet: FleetStatus, from sent: inout UInt64, summaryAlways: Bool) async -> ByteBuffer {
            var text = ""
            let summary = await fleet.summary()
            var latest = summary.sequence
            if let changes = await fleet.changes(after: sent) {
                for change in changes { text += event("change", id: change.sequence, change) }
                latest = max(latest, changes.last?.sequence ?? 0)
            } else {
                text += "event: reload\ndata: {}\n\n"
            }
            sent = latest
            if summaryAlways || summary != lastSummary {
                text += event("summary", id: summary.sequence, summary)
                lastSummary = summary
            }
            return ByteBuffer(string: text)
        }

        private func event(_ name: String, id: UInt64, _ value: some Encodable) -> String {
            let data = (try? json.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            return "id: \(id)\nevent: \(name)\ndata: \(data)\n\n"
        }
    }
}
