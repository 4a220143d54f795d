import Crypto
import Fluent
import NIOConcurrencyHelpers
import Vapor

/// The finished answers of the hot reading routes (issue 8 §5, issue 10's page benchmark), kept
/// in memory and replayed byte for byte, so that a list read again costs neither its statement
/// nor its JSON or Leaf rendering, nor the middleware behind this one.
///
/// - An answer is replayed only to a request for the same URL (path and query) with the same
///   credentials, byte for byte (`Authorization` and `Cookie` headers), over the same scheme.
///   Whatever the answer shows for its reader (the user's name and permissions, a page's CSRF
///   token) therefore belongs to the same person and session; another user, or another session
///   of the same user, is answered afresh.
/// - On this instance a change counts on the very next request: every answer is forgotten when
///   any Fluent model is written (`ForgetKeptAnswersOnWrite`), when any state-changing request
///   ends (its writes have committed by then), when a job step's work ends, when the live
///   health of a VM changes or is read again (`FleetStatus`), and when the sign-in verdicts are
///   forgotten (a session's values written, a sign-out). A raw SQL write outside a request
///   calls `forgetAll()` itself. An answer built while any of this happened is not kept (the
///   requests that waited for it still get it: they arrived before the change).
/// - A change made by another instance or by the command line on the same database counts
///   within `lifetime`, the promise `AuthenticationVerdicts` makes for sign-ins; an answer is
///   never used past its session's or token's expiry either.
/// - Only `200 OK` answers of routes marked `keepingAnswers()` are kept, at most `capacity` of
///   them and `byteCapacity` bytes in all. They carry an `ETag`, and a request whose
///   `If-None-Match` names it is answered `304 Not Modified`.
final class KeptAnswers: Sendable {
    /// How long an answer is replayed before it is built again.
    static let lifetime: TimeInterval = 1
    static let capacity = 2_000
    static let byteCapacity = 64 << 20
    /// How long before its end a kept answer is built again, by a request that is itself
    /// answered from it: an answer read steadily is then never missing, and the requests for it
    /// do not all wait for its rebuild once a second.
    static let refreshAhead: TimeInterval = 0.2

    /// What an answer depends on besides the data: the request it was built for.
    struct Key: Hashable, Sendable {
        /// The path and query as parsed (Vapor's `URI.string` rebuilds the text through
        /// Foundation on every call, which costs more than the rest of a replay's lookup).
        var url: URI
        var authorization: String?
        var cookie: String?
        var overHTTPS: Bool
    }

    /// One finished answer, as the middleware in front of this one saw it.
    struct Answer: Sendable {
        var headers: HTTPHeaders
        var body: ByteBuffer
        var validUntil: Date
        /// The sign-in verdicts' generation the answer was built under.
        var verdictGeneration: UInt64
        /// The pattern of the route that built it, which `/metrics` counts a replay under.
        var route: String
    }

    /// A request answering its key for those that arrive meanwhile (`Lookup.build`).
    struct Build: Sendable {
        fileprivate let id: UInt64
        fileprivate let generation: UInt64
        fileprivate let verdictGeneration: UInt64
        fileprivate let promise: EventLoopPromise<Answer?>
    }

    /// Why every answer was forgotten (`/metrics` counts each cause: the page benchmark shows
    /// how often its answers are forgotten, and by what).
    enum ForgetCause: String, Sendable, CaseIterable {
        /// A Fluent model was written (`ForgetKeptAnswersOnWrite`).
        case modelWrite = "model_write"
        /// A state-changing request ended.
        case request
        /// What the live health shows changed (`FleetStatus`).
        case liveHealth = "live_health"
        /// Work outside a request said so: a job step's end, a raw SQL write.
        case backgroundWork = "background_work"
    }

    /// What happened to requests for kept answers, and to the answers, since the start.
    struct Statistics: Sendable, Equatable {
        /// Answered from a kept answer.
        var replayed = 0
        /// Built their answer (nothing kept, nobody building it).
        var built = 0
        /// Of the replayed, built the answer's successor as well (`refreshAhead`).
        var refreshed = 0
        /// Waited for another request's build.
        var waited = 0
        /// Of those, answered afresh after all (the build had nothing to hand on: an error,
        /// not `200 OK`, or a credential without a kept sign-in verdict).
        var waitedThenBuilt = 0
        /// Builds that ended after a change forgot them: not kept, handed to their waiters.
        var forgottenWhileBuilt = 0
        var forgotten: [ForgetCause: Int] = [:]
    }

    /// What a request finds for its key.
    enum Lookup {
        /// A kept answer to replay.
        case kept(Answer)
        /// A kept answer to replay that ends within `refreshAhead`: this request also builds its
        /// successor, and `finish` keeps it.
        case keptBuildingNext(Answer, Build)
        /// The same request is being answered under the same generations: its answer once
        /// built, nil when there is none to hand on (then the request is answered afresh).
        case building(EventLoopFuture<Answer?>)
        /// Nothing: this request answers its key, and `finish` hands the answer on.
        case build(Build)
    }

    private struct State: Sendable {
        var generation: UInt64 = 0
        var answers: [Key: Answer] = [:]
        var bytes = 0
        /// One answer under way per key, so that when an answer ends its lifetime the requests
        /// for it wait for one rebuild instead of each running it (the p99 at 50 connections).
        var building: [Key: Build] = [:]
        var nextBuild: UInt64 = 0
        var statistics = Statistics()

        /// The valid answer kept for `key`, and whether it ends within `refreshAhead` with
        /// nobody building its successor.
        func kept(_ key: Key, at now: Date, verdictGeneration: UInt64) -> (Answer, dueForRebuild: Bool)? {
            guard let answer = answers[key], answer.validUntil > now, answer.verdictGeneration == verdictGeneration else { return nil }
            guard answer.validUntil.timeIntervalSince(now) < KeptAnswers.refreshAhead else { return (answer, false) }
            let successorUnderWay = building[key].map { $0.generation == generation && $0.verdictGeneration == verdictGeneration } ?? false
            return (answer, !successorUnderWay)
        }

        mutating func startBuild(_ key: Key, verdictGeneration: UInt64, on eventLoop: any EventLoop) -> Build {
            nextBuild &+= 1
            let build = Build(id: nextBuild, generation: generation, verdictGeneration: verdictGeneration, promise: eventLoop.makePromise())
            building[key] = build
            return build
        }
    }

    private let state = NIOLockedValueBox(State())

    /// How many answers are kept (tests).
    var count: Int { state.withLockedValue { $0.answers.count } }

    var statistics: Statistics { state.withLockedValue { $0.statistics } }

    /// The kept answer for `key` when it is replayed as it is; nil when there is none, or when
    /// it is due for its rebuild and nobody builds it yet (then `lookUp` starts that build).
    /// `KeptAnswersResponder` asks this before routing.
    func replay(_ key: Key, at now: Date, verdictGeneration: UInt64) -> Answer? {
        state.withLockedValue { state in
            guard case let (answer, dueForRebuild)? = state.kept(key, at: now, verdictGeneration: verdictGeneration), !dueForRebuild else {
                return nil
            }
            state.statistics.replayed += 1
            return answer
        }
    }

    func lookUp(_ key: Key, at now: Date, verdictGeneration: UInt64, on eventLoop: any EventLoop) -> Lookup {
        state.withLockedValue { state in
            if case let (answer, dueForRebuild)? = state.kept(key, at: now, verdictGeneration: verdictGeneration) {
                state.statistics.replayed += 1
                guard dueForRebuild else { return .kept(answer) }
                state.statistics.refreshed += 1
                return .keptBuildingNext(answer, state.startBuild(key, verdictGeneration: verdictGeneration, on: eventLoop))
            }
            if let build = state.building[key], build.generation == state.generation, build.verdictGeneration == verdictGeneration {
                state.statistics.waited += 1
                return .building(build.promise.futureResult)
            }
            state.statistics.built += 1
            return .build(state.startBuild(key, verdictGeneration: verdictGeneration, on: eventLoop))
        }
    }

    /// Ends a build: keeps its answer unless something was forgotten (or the sign-in verdicts
    /// changed) meanwhile, and hands it to the requests waiting for it either way. They asked
    /// before any such change (a request arriving after one builds anew), so the answer is
    /// theirs as much as the builder's; had they each built their own instead, a change during
    /// a build would cost up to one build per connection at once (the pages' p99).
    func finish(_ build: Build, for key: Key, with answer: Answer?, verdictGeneration: UInt64, at now: Date) {
        state.withLockedValue { state in
            if state.building[key]?.id == build.id { state.building[key] = nil }
            guard let answer else { return }
            guard state.generation == build.generation, verdictGeneration == build.verdictGeneration else {
                state.statistics.forgottenWhileBuilt += 1
                return
            }
            guard answer.body.readableBytes <= Self.byteCapacity / 4 else { return }
            if let replaced = state.answers.removeValue(forKey: key) { state.bytes -= replaced.body.readableBytes }
            if state.answers.count >= Self.capacity || state.bytes + answer.body.readableBytes > Self.byteCapacity {
                state.answers = state.answers.filter { $0.value.validUntil > now }
                state.bytes = state.answers.values.reduce(0) { $0 + $1.body.readableBytes }
            }
            if state.answers.count >= Self.capacity || state.bytes + answer.body.readableBytes > Self.byteCapacity {
                state.answers = [:]
                state.bytes = 0
            }
            state.answers[key] = answer
            state.bytes += answer.body.readableBytes
        }
        build.promise.succeed(answer)
    }

    /// Counts a request that waited for a build with nothing to hand on, and answers afresh.
    func noteWaiterBuilds() {
        state.withLockedValue { $0.statistics.waitedThenBuilt += 1 }
    }

    /// Forgets every answer; answers being built when this runs are not kept, and requests
    /// arriving after it do not wait for them.
    func forgetAll(because cause: ForgetCause = .backgroundWork) {
        state.withLockedValue { state in
            state.statistics.forgotten[cause, default: 0] += 1
            state.generation &+= 1
            state.answers = [:]
            state.bytes = 0
            state.building = [:]
        }
    }

    /// A strong validator of a body (its SHA-256, shortened).
    static func etag(of body: ByteBuffer) -> String {
        "\"" + SHA256.hash(data: body.readableBytesView).prefix(16).hex + "\""
    }
}

extension KeptAnswers.Key {
    init(_ request: Request) {
        self.init(
            url: request.url, authorization: request.headers.first(name: .authorization),
            cookie: request.headers.first(name: .cookie), overHTTPS: request.arrivedOverHTTPS)
    }
}

/// Replays kept answers of routes marked `keepingAnswers()` and keeps new ones; forgets every
/// kept answer and sign-in verdict when a state-changing request ends. Placed in front of
/// everything that shapes an answer (security headers, sessions, sign-in, permissions), so a
/// replayed answer is what that chain gave the same request a moment ago. Written against
/// futures rather than `async` so that a replayed answer starts no task.
struct KeptAnswersMiddleware: Middleware {
    func respond(to request: Request, chainingTo next: any Responder) -> EventLoopFuture<Response> {
        let application = request.application
        guard request.method == .GET, request.route?.keepsAnswers == true else {
            guard ![.GET, .HEAD, .OPTIONS].contains(request.method) else { return next.respond(to: request) }
            // Answered or failed, whatever the request wrote has committed by now.
            return next.respond(to: request).always { _ in
                application.keptAnswers.forgetAll(because: .request)
                application.authenticationVerdicts.forgetAll()
            }
        }
        let kept = application.keptAnswers
        let verdicts = application.authenticationVerdicts
        let key = KeptAnswers.Key(request)
        let now = Date()
        switch kept.lookUp(key, at: now, verdictGeneration: verdicts.generation, on: request.eventLoop) {
        case .kept(let answer):
            return request.eventLoop.makeSucceededFuture(Self.response(answer, to: request))
        case .keptBuildingNext(let answer, let build):
            next.respond(to: request).whenComplete { result in
                let successor = try? result.map { Self.answered($0, to: request, at: now).answer }.get()
                kept.finish(build, for: key, with: successor, verdictGeneration: verdicts.generation, at: Date())
            }
            return request.eventLoop.makeSucceededFuture(Self.response(answer, to: request))
        case .building(let waited):
            return waited.hop(to: request.eventLoop).flatMap { answer in
                guard let answer else {
                    kept.noteWaiterBuilds()
                    return next.respond(to: request).map { Self.answered($0, to: request, at: now).response }
                }
                return request.eventLoop.makeSucceededFuture(Self.response(answer, to: request))
            }
        case .build(let build):
            return next.respond(to: request).map { response in
                let answered = Self.answered(response, to: request, at: now)
                kept.finish(build, for: key, with: answered.answer, verdictGeneration: verdicts.generation, at: Date())
                return answered.response
            }.flatMapErrorThrowing { error in
                kept.finish(build, for: key, with: nil, verdictGeneration: verdicts.generation, at: Date())
                throw error
            }
        }
    }

    /// A fresh answer with its ETag (or `304 Not Modified`), and what to keep of it: nil for
    /// anything but a `200 OK` with its body at hand, or when a credential the request carries
    /// has no kept sign-in verdict to say when it expires.
    private static func answered(
        _ response: Response, to request: Request, at now: Date
    ) -> (response: Response, answer: KeptAnswers.Answer?) {
        guard response.status == .ok, let body = response.body.buffer else { return (response, nil) }
        response.headers.replaceOrAdd(name: .eTag, value: KeptAnswers.etag(of: body))
        // Per reader: no shared cache may keep it, and a browser asks again each time.
        response.headers.replaceOrAdd(name: .cacheControl, value: "private, no-cache")
        let verdicts = request.application.authenticationVerdicts
        // Its length stated once here, so that a replay sends the headers as they are.
        var headers = response.headers
        headers.remove(name: .transferEncoding)
        headers.replaceOrAdd(name: .contentLength, value: String(body.readableBytes))
        // A verdict that ended while the answer was built still signed the request in: it
        // must not drop the answer (the requests waiting for this build would each build their own).
        let answer = credentialsValidUntil(request, verdicts: verdicts, since: now).map { validUntil in
            KeptAnswers.Answer(
                headers: headers, body: body,
                validUntil: min(validUntil, now.addingTimeInterval(KeptAnswers.lifetime)), verdictGeneration: verdicts.generation,
                route: RequestMetrics.route(of: request))
        }
        return (notModified(response.headers, to: request) ?? response, answer)
    }

    /// When the request's session and token expire, as their sign-in verdicts kept since the
    /// request began say; nil (keep nothing) when a credential it carries has none.
    private static func credentialsValidUntil(_ request: Request, verdicts: AuthenticationVerdicts, since start: Date) -> Date? {
        let now = Date()
        var validUntil = Date.distantFuture
        if request.headers.first(name: .cookie) != nil, let session = request.loadedSession {
            guard let verdict = verdicts.session(session.keyDigest, at: now, since: start) else { return nil }
            validUntil = min(validUntil, verdict.expiresAt)
        }
        if let bearer = request.headers.bearerAuthorization {
            guard let verdict = verdicts.token(APIToken.digest(of: bearer.token), at: now, since: start) else { return nil }
            validUntil = min(validUntil, verdict.expiresAt ?? .distantFuture)
        }
        return validUntil
    }

    /// The kept answer as it was sent (`headersNoUpdate`: its length is in its headers already,
    /// and stating it again copied every header of every replay).
    fileprivate static func response(_ answer: KeptAnswers.Answer, to request: Request) -> Response {
        notModified(answer.headers, to: request)
            ?? Response(status: .ok, version: .http1_1, headersNoUpdate: answer.headers, body: .init(buffer: answer.body))
    }

    /// `304 Not Modified` with the answer's headers when the request names its ETag.
    private static func notModified(_ headers: HTTPHeaders, to request: Request) -> Response? {
        guard let etag = headers.first(name: .eTag), request.headers.contains(name: .ifNoneMatch) else { return nil }
        let named = request.headers[.ifNoneMatch].flatMap { $0.split(separator: ",") }.map { tag in
            let trimmed = tag.trimmingCharacters(in: .whitespaces)
            return trimmed.hasPrefix("W/") ? String(trimmed.dropFirst(2)) : trimmed
        }
        guard named.contains(etag) || named.contains("*") else { return nil }
        var unchanged = headers
        unchanged.remove(name: .contentLength)
        unchanged.remove(name: .contentType)
        return Response(status: .notModified, headers: unchanged)
    }
}

/// Replays a kept answer before Vapor routes the request and runs the middleware: the
/// replay is the one `KeptAnswersMiddleware` would give, without the cost of routing and of
/// the middleware chain, which for a small answer such as the dashboard summary is most of
/// the request's time in Flotilla (issue 10's page benchmark). Anything else, and a kept
/// answer due for its rebuild, goes on to `next` (the routes behind the middleware).
struct KeptAnswersResponder: Responder {
    let kept: KeptAnswers
    let verdicts: AuthenticationVerdicts
    let metrics: PlatformMetrics
    let next: any Responder

    func respond(to request: Request) -> EventLoopFuture<Response> {
        let started = ContinuousClock.now
        guard request.method == .GET,
            let answer = kept.replay(KeptAnswers.Key(request), at: Date(), verdictGeneration: verdicts.generation)
        else { return next.respond(to: request) }
        let response = KeptAnswersMiddleware.response(answer, to: request)
        metrics.recordRequest(
            method: HTTPMethod.GET.rawValue, route: answer.route, status: response.status.code,
            duration: ContinuousClock.now - started)
        return request.eventLoop.makeSucceededFuture(response)
    }
}

/// Forgets every kept answer after any model is written, from a request, a job or the command
/// line alike: the kept lists show environments, VMs, roles and users, and whatever a new list
/// marked `keepingAnswers()` shows is covered without a list of models to keep up to date.
struct ForgetKeptAnswersOnWrite: AnyModelMiddleware {
    let kept: KeptAnswers

    func handle(
        _ event: ModelEvent, _ model: any AnyModel, on db: any Database, chainingTo next: any AnyModelResponder
    )
        -> EventLoopFuture<Void>
    {
        next.handle(event, model, on: db).always { _ in kept.forgetAll(because: .modelWrite) }
    }
}

private struct KeepsAnswersKey: Hashable, Sendable {}

extension Route {
    /// Marks a reading route whose answers `KeptAnswersMiddleware` keeps. Only for answers that
    /// depend on nothing but the URL, the reader's credentials and stored or live data whose
    /// changes forget them (see `KeptAnswers`).
    @discardableResult
    func keepingAnswers() -> Route {
        userInfo[AnySendableHashable(KeepsAnswersKey())] = true
        return self
    }

    var keepsAnswers: Bool {
        userInfo[AnySendableHashable(KeepsAnswersKey())] as? Bool ?? false
    }
}

extension Application {
    private struct KeptAnswersKey: StorageKey {
        typealias Value = KeptAnswers
    }

    /// This instance's kept answers (made on first use: the job engine and the live health
    /// forget them, and are made before the middleware).
    var keptAnswers: KeptAnswers {
        if let kept = storage[KeptAnswersKey.self] { return kept }
        let kept = KeptAnswers()
        storage[KeptAnswersKey.self] = kept
        return kept
    }

    /// Keeps answers of the routes marked `keepingAnswers()`, forgotten whenever a model is
    /// written, and replays them in front of the routes; returns the middleware to install in
    /// front of the rest.
    func useKeptAnswers() -> KeptAnswersMiddleware {
        databases.middleware.use(ForgetKeptAnswersOnWrite(kept: keptAnswers))
        responder.use { app in
            KeptAnswersResponder(
                kept: app.keptAnswers, verdicts: app.authenticationVerdicts, metrics: app.platformMetrics, next: app.responder.default)
        }
        return KeptAnswersMiddleware()
    }
}
