import FluentPostgresDriver
import Vapor

/// Tells this instance's job engine at once when another instance changed the queue (SPEC
/// BEY-8): PostgreSQL's LISTEN on a connection of its own, fed by the triggers of migration
/// 016 (`CreateJobQueueNotifications`) and the claim function of migration 024
/// (`NotifyOnlyWorkLeftForOthers`). Only work that the instance making a change does not take
/// itself is announced: each step's end woke every instance before, several claims per end.
/// The engine still polls, so a lost connection only makes it slower until this one is back.
struct JobWakeups: Sendable {
    static let channel = "flotilla_jobs"

    /// What changed; the payload of each notification.
    enum Signal: String, CaseIterable, Sendable {
        /// Steps were submitted, or an instance claimed all it could take: more may be runnable.
        case queued
        /// A running step was queued again, or ended by another than its lease's live holder
        /// (which claims again itself after its own ends): a slot is free, or a phase may start.
        case ended
        /// An instance gave a running step back at shutdown: it is to be taken over.
        case released
        /// A job was asked to stop.
        case cancel
    }

    let configuration: PostgresConnection.Configuration
    let eventLoop: any EventLoop
    let logger: Logger

    /// Listens until the task is cancelled, connecting again a second after a lost connection.
    /// `receive` gets each signal, and `nil` whenever listening (re)starts: what happened
    /// while nobody listened must be looked for.
    func run(_ receive: @escaping @Sendable (Signal?) async -> Void) async {
        var attempt = 0
        while !Task.isCancelled {
            attempt += 1
            do {
                let connection = try await PostgresConnection.connect(
                    on: eventLoop, configuration: configuration, id: attempt, logger: logger)
                do {
                    try await connection.listen(on: Self.channel) { notifications in
                        await receive(nil)
                        for try await notification in notifications {
                            await receive(Signal(rawValue: notification.payload))
                        }
                    }
                } catch {
                    try? await connection.close()
                    throw error
                }
                try? await connection.close()
            } catch {
                guard !Task.isCancelled else { return }
                logger.warning("job engine: listening for other instances' changes failed: \(FlotillaError.describe(error))")
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
