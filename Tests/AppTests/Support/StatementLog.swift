import Foundation
import Logging
import XCTVapor

@testable import App

/// The SQL statements requests run, from the query log (every driver logs each statement as
/// "Executing query" with its text). Only statements logged with a request's ID count, so
/// background work beside the test does not.
final class StatementLog: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [String] = []

    var handler: Handler { Handler(log: self) }

    struct Handler: LogHandler {
        let log: StatementLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            guard metadata["request-id"] != nil, event.message.description == "Executing query",
                case .string(let sql) = event.metadata?["sql"]
            else { return }
            log.lock.withLock { log.recorded.append(sql) }
        }
    }

    var count: Int { lock.withLock { recorded.count } }

    /// The statements one successful GET runs to build its answer (kept answers are forgotten
    /// first), or, `replayed`, to answer again what it answered a moment ago.
    func statements(of client: TestClient, _ path: String, replayed: Bool = false) async throws -> [String] {
        if !replayed { client.app.keptAnswers.forgetAll() }
        return try await statements { try await client.request(.GET, path) }
    }

    /// The statements run while `body` sends a request that must succeed.
    func statements(_ body: () async throws -> TestingHTTPResponse) async throws -> [String] {
        let start = lock.withLock { recorded.count }
        let response = try await body()
        XCTAssertEqual(response.status, .ok, response.body.string)
        return lock.withLock { Array(recorded[start...]) }
    }
}
