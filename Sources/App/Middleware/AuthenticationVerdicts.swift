import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Vapor

/// Who a session cookie or an API token signs in, kept in memory for a moment so that a
/// reading request runs no statement to learn it (issue 8 §5).
///
/// - On this instance a change counts on the very next request: every verdict is forgotten
///   when a user, token or session model is written (`ForgetVerdictsOnWrite`), when the session
///   driver writes, and when any state-changing request ends (after its transaction has
///   committed; `KeptAnswersMiddleware`). A lookup that was under way during such a write is not kept.
/// - A change made by another instance or by the command line on the same database counts
///   within `lifetime`: a verdict is read again from the database that long after it was read.
/// - The expiry of a session or token is checked on every use. Unknown keys are never kept, so
///   guessing fills no memory, and at most `capacity` verdicts are kept.
final class AuthenticationVerdicts: Sendable {
    /// How long a verdict read from the database is used before it is read again.
    static let lifetime: TimeInterval = 1
    static let capacity = 10_000

    /// A session cookie's verdict: the stored session with its user's row.
    struct SessionVerdict: Sendable {
        var values: SessionData
        var userRow: any SQLRow
        var expiresAt: Date
    }

    /// An API token's verdict: the token with its user's row.
    struct TokenVerdict: Sendable {
        var tokenID: UUID
        var userRow: any SQLRow
        var expiresAt: Date?
        var lastUsedAt: Date?
    }

    private struct Kept<Verdict: Sendable>: Sendable {
        var verdict: Verdict
        var readAt: Date
    }

    private struct State: Sendable {
        var generation: UInt64 = 0
        var sessions: [String: Kept<SessionVerdict>] = [:]
        var tokens: [String: Kept<TokenVerdict>] = [:]

        var count: Int { sessions.count + tokens.count }
    }

    private let state = NIOLockedValueBox(State())

    /// Taken before a database lookup and handed back with its result: a result read while a
    /// write was under way is not kept.
    var generation: UInt64 { state.withLockedValue { $0.generation } }

    /// The kept verdict of a session, fresh at `now`, or at any moment since `start` (a
    /// request that began then and was signed in by it).
    func session(_ digest: String, at now: Date, since start: Date? = nil) -> SessionVerdict? {
        state.withLockedValue { state in
            state.sessions[digest].flatMap { Self.isFresh($0.readAt, since: start ?? now, until: now) ? $0.verdict : nil }
        }
    }

    /// The kept verdict of a token, fresh at `now`, or at any moment since `start`.
    func token(_ digest: String, at now: Date, since start: Date? = nil) -> TokenVerdict? {
        state.withLockedValue { state in
            state.tokens[digest].flatMap { Self.isFresh($0.readAt, since: start ?? now, until: now) ? $0.verdict : nil }
        }
    }

    func keep(session verdict: SessionVerdict, for digest: String, readAt: Date, generation: UInt64) {
        state.withLockedValue { state in
            guard state.generation == generation else { return }
            if state.count >= Self.capacity {
                state.sessions = [:]
                state.tokens = [:]
            }
            state.sessions[digest] = Kept(verdict: verdict, readAt: readAt)
        }
    }

    func keep(token verdict: TokenVerdict, for digest: String, readAt: Date, generation: UInt64) {
        state.withLockedValue { state in
            guard state.generation == generation else { return }
            if state.count >= Self.capacity {
                state.sessions = [:]
                state.tokens = [:]
            }
            state.tokens[digest] = Kept(verdict: verdict, readAt: readAt)
        }
    }

    /// Records a token use written to the database, so the requests after it do not write it again.
    func noteUse(ofToken digest: String, at time: Date) {
        state.withLockedValue { state in
            state.tokens[digest]?.verdict.lastUsedAt = time
        }
    }

    /// Forgets every verdict; lookups under way when this runs are not kept either.
    func forgetAll() {
        state.withLockedValue { state in
            state.generation &+= 1
            state.sessions = [:]
            state.tokens = [:]
        }
    }

    /// Whether a verdict read at `readAt` was fresh at some moment from `start` to `now`.
    private static func isFresh(_ readAt: Date, since start: Date, until now: Date) -> Bool {
        readAt <= now && start.timeIntervalSince(readAt) < lifetime
    }
}

extension Application {
    private struct AuthenticationVerdictsKey: StorageKey {
        typealias Value = AuthenticationVerdicts
    }

    /// The sign-in verdicts of this instance; set up by `useAuthenticationVerdicts()`.
    var authenticationVerdicts: AuthenticationVerdicts {
        guard let verdicts = storage[AuthenticationVerdictsKey.self] else {
            preconditionFailure("configure(_:config:) must run before the application is used")
        }
        return verdicts
    }

    /// Keeps sign-in verdicts, forgotten whenever a user, token or session model is written.
    func useAuthenticationVerdicts() {
        let verdicts = AuthenticationVerdicts()
        storage[AuthenticationVerdictsKey.self] = verdicts
        databases.middleware.use(ForgetVerdictsOnWrite<User>(verdicts: verdicts))
        databases.middleware.use(ForgetVerdictsOnWrite<APIToken>(verdicts: verdicts))
        databases.middleware.use(ForgetVerdictsOnWrite<BrowserSession>(verdicts: verdicts))
    }
}

/// Forgets every sign-in verdict after a model that one may rest on is written, from a
/// request, a job or the command line alike. (Writes through a query builder, and writes inside
/// a transaction that has not committed yet, are covered by `KeptAnswersMiddleware` at the
/// end of the request.)
struct ForgetVerdictsOnWrite<Written: Model>: AsyncModelMiddleware {
    let verdicts: AuthenticationVerdicts

    func create(model: Written, on db: any Database, next: any AnyAsyncModelResponder) async throws {
        defer { verdicts.forgetAll() }
        try await next.create(model, on: db)
    }

    func update(model: Written, on db: any Database, next: any AnyAsyncModelResponder) async throws {
        defer { verdicts.forgetAll() }
        try await next.update(model, on: db)
    }

    func delete(model: Written, force: Bool, on db: any Database, next: any AnyAsyncModelResponder) async throws {
        defer { verdicts.forgetAll() }
        try await next.delete(model, force: force, on: db)
    }
}
