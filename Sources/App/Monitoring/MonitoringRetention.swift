import Fluent
import Vapor

/// Forgets what monitoring keeps only for looking back: agent events, published notification
/// events and finished deliveries (with their attempts) older than `days`. Mail still queued,
/// being sent or held for a digest is never touched. A periodic task led by one instance.
enum MonitoringRetention {
    static let days = 90
    static let taskName = "monitoring-retention"
    /// Rows deleted per statement, so a first run over a large backlog holds no long lock.
    static let batch = 500

    static func register(on app: Application) throws {
        try app.periodic.register(name: taskName, interval: .seconds(600)) { context in
            let removed = try await run(database: context.database)
            if removed > 0 { context.logger.info("monitoring retention: \(removed) rows older than \(days) days removed") }
        }
    }

    /// One pass; returns how many rows went (attempts included).
    @discardableResult
    static func run(database: any Database, now: Date = Date()) async throws -> Int {
        let cutoff = now.addingTimeInterval(-Double(days) * 86_400)
        var removed = 0
        while true {
            try Task.checkCancellation()
            let ids = try await AgentEventRecord.query(on: database).filter(\.$receivedAt < cutoff).limit(batch).all(\.$id)
            guard !ids.isEmpty else { break }
            try await AgentEventRecord.query(on: database).filter(\.$id ~~ ids).delete()
            removed += ids.count
        }
        while true {
            try Task.checkCancellation()
            let ids = try await NotificationEventRecord.query(on: database).filter(\.$createdAt < cutoff)
                .filter(\.$state != .pending).limit(batch).all(\.$id)
            guard !ids.isEmpty else { break }
            try await NotificationEventRecord.query(on: database).filter(\.$id ~~ ids).delete()
            removed += ids.count
        }
        while true {
            try Task.checkCancellation()
            let ids = try await NotificationDelivery.query(on: database).filter(\.$createdAt < cutoff)
                .filter(\.$status ~~ [.delivered, .failed]).limit(batch).all(\.$id)
            guard !ids.isEmpty else { break }
            removed += try await database.transaction { transaction in
                let attempts = try await NotificationAttempt.query(on: transaction).filter(\.$delivery.$id ~~ ids).count()
                try await NotificationAttempt.query(on: transaction).filter(\.$delivery.$id ~~ ids).delete()
                try await NotificationDelivery.query(on: transaction).filter(\.$id ~~ ids).delete()
                return attempts + ids.count
            }
        }
        return removed
    }
}
