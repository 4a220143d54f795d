import Fluent
import NIOConcurrencyHelpers
import SQLKit
import XCTVapor

@testable import App

/// The hot lists' answers are kept per data change (`KeptAnswers`): what this instance changes
/// shows on the very next read, and no reader is ever handed an answer kept for another reader
/// or another session.
final class KeptAnswersTests: XCTestCase {
    func testAChangeThroughTheAPIShowsOnTheNextRead() async throws {
        try await InMemoryWorld.run { world in
            let admin = world.admin
            let vm = try await world.addReadyVM("web-01", "10.77.5.9")
            let hot = ["/api/v1/environments?per=100", "/api/v1/users", "/api/v1/vms?per=100", "/api/v1/dashboard", "/?per=100"]
            for path in hot {
                let first = try await admin.request(.GET, path)
                let again = try await admin.request(.GET, path)
                XCTAssertEqual(again.body.string, first.body.string, path)
            }
            XCTAssertEqual(world.app.keptAnswers.count, hot.count, "each list is kept")

            let added = try await admin.request(.POST, "/api/v1/environments", json: API.EnvironmentInput(name: "prod", description: "new"))
            XCTAssertEqual(added.status, .created, added.body.string)
            let environments = try admin.decode(
                ListResponse<Environments.Row>.self, try await admin.request(.GET, "/api/v1/environments?per=100"))
            XCTAssertEqual(environments.items.map(\.name), ["prod", "staging"])

            let edited = try await admin.request(
                .PATCH, "/api/v1/environments/\(world.environmentID)", json: API.DescriptionInput(description: "edited"))
            XCTAssertEqual(edited.status, .ok, edited.body.string)
            let afterEdit = try admin.decode(
                ListResponse<Environments.Row>.self, try await admin.request(.GET, "/api/v1/environments?per=100"))
            XCTAssertEqual(afterEdit.items.last?.description, "edited")

            try await createUser(admin, "olga", role: .ordinary)
            let users = try admin.decode(ListResponse<API.UserBody>.self, try await admin.request(.GET, "/api/v1/users"))
            XCTAssertEqual(users.items.map(\.username), ["admin", "olga"])

            let noted = try await admin.request(.PUT, "/api/v1/vms/\(vm.id)/notes", json: API.NotesInput(notes: "owner: team b"))
            XCTAssertEqual(noted.status, .ok, noted.body.string)
            let vms = try admin.decode(ListResponse<VMListing>.self, try await admin.request(.GET, "/api/v1/vms?per=100"))
            XCTAssertEqual(vms.items.map(\.notes), ["owner: team b"])
            let page = try await admin.request(.GET, "/?per=100")
            XCTAssertTrue(page.body.string.contains("owner: team b"), "the page shows the new notes")
        }
    }

    func testAnAnswerCarriesAnETagAndAnUnchangedOneIsNotSentAgain() async throws {
        try await InMemoryWorld.run { world in
            let admin = world.admin
            let first = try await admin.request(.GET, "/api/v1/environments")
            let etag = try XCTUnwrap(first.headers.first(name: .eTag))
            XCTAssertEqual(first.headers.first(name: .cacheControl), "private, no-cache")
            let replayed = try await admin.request(.GET, "/api/v1/environments")
            XCTAssertEqual(replayed.body.string, first.body.string)
            XCTAssertEqual(replayed.headers[.contentLength], [String(first.body.readableBytes)], "a replay states its length once")
            XCTAssertEqual(replayed.headers.first(name: .eTag), etag)
            let unchanged = try await admin.request(.GET, "/api/v1/environments", headers: ["If-None-Match": etag])
            XCTAssertEqual(unchanged.status, .notModified)
            XCTAssertEqual(unchanged.body.readableBytes, 0)
            XCTAssertEqual(unchanged.headers.first(name: .eTag), etag)

            let added = try await admin.request(.POST, "/api/v1/environments", json: API.EnvironmentInput(name: "prod", description: ""))
            XCTAssertEqual(added.status, .created, added.body.string)
            let changed = try await admin.request(.GET, "/api/v1/environments", headers: ["If-None-Match": etag])
            XCTAssertEqual(changed.status, .ok)
            XCTAssertNotEqual(changed.headers.first(name: .eTag), etag)
            XCTAssertTrue(changed.body.string.contains("\"prod\""))
        }
    }

    /// An answer whose build outlasts the kept sign-in verdict its request used is still kept
    /// (the verdict was fresh when the request was signed in by it). Dropping it made every
    /// request waiting for that build answer afresh: up to 49 page builds at once, the page
    /// benchmark's 186 ms p99.
    func testAnAnswerBuiltAcrossTheEndOfItsSignInVerdictIsKept() async throws {
        try await InMemoryWorld.run { world in
            let app = world.app
            app.get("test-slow-list") { _ async throws -> String in
                try await Task.sleep(for: .milliseconds(300))
                return "slow list"
            }.requires(.viewDashboard).keepingAnswers()
            let created = try await world.admin.request(.POST, "/api/v1/tokens", json: API.NewToken(name: "reader"))
            let reader = try TestClient(app)
            let token = try XCTUnwrap(try world.admin.decode(API.TokenBody.self, created).token)
            reader.bearer = token
            let first = try await reader.request(.GET, "/api/v1/dashboard")
            XCTAssertEqual(first.status, .ok, "signed in: the token's verdict is kept")
            let verdicts = app.authenticationVerdicts
            let digest = APIToken.digest(of: token)
            let verdict = try XCTUnwrap(verdicts.token(digest, at: Date()))
            // Read long enough ago that it ends 100 ms into the next request's 300 ms build.
            verdicts.keep(
                token: verdict, for: digest, readAt: Date() - AuthenticationVerdicts.lifetime + 0.1, generation: verdicts.generation)

            let built = try await reader.request(.GET, "/test-slow-list")
            XCTAssertEqual(built.body.string, "slow list")
            let replayedBefore = app.keptAnswers.statistics.replayed
            let again = try await reader.request(.GET, "/test-slow-list")
            XCTAssertEqual(again.body.string, "slow list")
            XCTAssertEqual(app.keptAnswers.statistics.replayed, replayedBefore + 1, "the answer built across the verdict's end was kept")
        }
    }

    /// A GET that a kept answer fits is answered in front of the routes and the middleware,
    /// which are not asked, and counted in `/metrics` under the route that built the answer;
    /// any other request goes on to them.
    func testTheResponderReplaysAKeptAnswerWithoutAskingTheRoutes() async throws {
        try await TestApp.run { app in
            let routes = CountingResponder()
            let kept = app.keptAnswers
            let verdicts = app.authenticationVerdicts
            let responder = KeptAnswersResponder(kept: kept, verdicts: verdicts, metrics: app.platformMetrics, next: routes)
            let loop = app.eventLoopGroup.any()
            func request(_ method: HTTPMethod) -> Request {
                Request(
                    application: app, method: method, url: "/api/v1/dashboard", headersNoUpdate: ["Authorization": "Bearer t"], on: loop)
            }
            let key = KeptAnswers.Key(request(.GET))
            guard case .build(let build) = kept.lookUp(key, at: Date(), verdictGeneration: verdicts.generation, on: loop) else {
                return XCTFail("nothing is kept yet")
            }
            let answer = KeptAnswers.Answer(
                headers: ["Content-Length": "4"], body: ByteBuffer(string: "kept"), validUntil: Date() + KeptAnswers.lifetime,
                verdictGeneration: verdicts.generation, route: "/api/v1/dashboard")
            kept.finish(build, for: key, with: answer, verdictGeneration: verdicts.generation, at: Date())

            let replayed = try await responder.respond(to: request(.GET)).get()
            XCTAssertEqual(replayed.body.buffer.map { String(buffer: $0) }, "kept")
            XCTAssertEqual(routes.count, 0, "the routes were not asked")
            let posted = try await responder.respond(to: request(.POST)).get()
            XCTAssertEqual(posted.status, .noContent)
            XCTAssertEqual(routes.count, 1, "anything but a GET goes on to the routes")
            let exposition = app.platformMetrics.registry.emitToString()
            XCTAssertTrue(
                exposition.contains(#"flotilla_http_requests_total{method="GET",route="/api/v1/dashboard",status="200"} 1"#), exposition)
        }
    }

    /// An ordinary administrator reading the same URL right after a system administrator gets
    /// a page built for them: their name, no notes editing, no system-only navigation.
    func testAReaderWithFewerPermissionsNeverGetsAnotherReadersAnswer() async throws {
        try await InMemoryWorld.run { world in
            try await world.addReadyVM("web-01", "10.77.5.9")
            try await createUser(world.admin, "olga", role: .ordinary)
            let olga = try TestClient(world.app)
            try await olga.signIn("olga", "password-123")
            let adminPage = try await world.admin.request(.GET, "/?per=100")
            XCTAssertTrue(adminPage.body.string.contains("data-notes-api="), "a system administrator edits notes")
            XCTAssertTrue(adminPage.body.string.contains("href=\"/settings\""))
            let adminSummary = try await world.admin.request(.GET, "/api/v1/dashboard")
            XCTAssertEqual(adminSummary.status, .ok)

            let olgaPage = try await olga.request(.GET, "/?per=100")
            XCTAssertEqual(olgaPage.status, .ok)
            XCTAssertFalse(olgaPage.body.string.contains("data-notes-api="), "an ordinary administrator does not")
            XCTAssertFalse(olgaPage.body.string.contains("href=\"/settings\""))
            XCTAssertTrue(olgaPage.body.string.contains("olga"))

            // Demoted: the next read is answered for the demoted user, not from what was kept.
            let adminUser = try await User.query(on: world.app.db).filter(\.$username == "admin").first()
            let adminID = try XCTUnwrap(adminUser?.id)
            try await createUser(world.admin, "root2", role: .system)
            let root2 = try TestClient(world.app)
            try await root2.signIn("root2", "password-123")
            _ = try await root2.request(.GET, "/?per=100")
            let demoted = try await root2.request(.PATCH, "/api/v1/users/\(adminID)", json: API.UserChanges(role: "ordinary"))
            XCTAssertEqual(demoted.status, .ok, demoted.body.string)
            let afterDemotion = try await world.admin.request(.GET, "/?per=100")
            XCTAssertFalse(afterDemotion.body.string.contains("data-notes-api="), "the demotion counts on the next read")
        }
    }

    /// Two sessions of the same user read the same page: each gets its own session's CSRF token.
    func testAPagesPerSessionPartsAreNeverShared() async throws {
        try await InMemoryWorld.run { world in
            let first = world.admin
            let second = try TestClient(world.app)
            try await second.signIn("admin", TestApp.adminPassword)
            let firstToken = try XCTUnwrap(first.csrfHeader)
            let secondToken = try XCTUnwrap(second.csrfHeader)
            XCTAssertNotEqual(firstToken, secondToken)
            for _ in 1...2 {
                for (client, token, other) in [(first, firstToken, secondToken), (second, secondToken, firstToken)] {
                    let page = try await client.request(.GET, "/?per=100")
                    XCTAssertEqual(page.status, .ok)
                    XCTAssertEqual(Self.csrfToken(in: page.body.string), token, "the page carries its own session's token")
                    XCTAssertFalse(page.body.string.contains(other))
                }
            }
            XCTAssertEqual(world.app.keptAnswers.count, 2, "one page kept per session")
        }
    }

    /// A job step's raw SQL and a sweep's verdict, both outside any request, show on the next read.
    func testBackgroundChangesShowOnTheNextRead() async throws {
        try await InMemoryWorld.run { world in
            let app = world.app
            let admin = world.admin
            let vm = try await world.addReadyVM("web-01", "10.77.5.9")
            app.flotilla.jobs.register(DescribeEnvironmentsStep())
            _ = try await admin.request(.GET, "/api/v1/environments")
            let jobID = try await app.flotilla.jobs.submit(
                kind: "test.describe", title: "describe", by: .system,
                steps: [try StepPlan(DescribeEnvironmentsStep.self, "written by a step", title: "describe")])
            try await app.flotilla.jobs.waitUntilFinished(jobID)
            let environments = try admin.decode(ListResponse<Environments.Row>.self, try await admin.request(.GET, "/api/v1/environments"))
            XCTAssertEqual(environments.items.map(\.description), ["written by a step"])

            let fleet = app.fleetStatus
            await fleet.setRecords(try await DashboardRuntime.records(on: app.db))
            let checking = try admin.decode(API.DashboardSummary.self, try await admin.request(.GET, "/api/v1/dashboard"))
            XCTAssertEqual([checking.total, checking.reachable], [1, 0])
            _ = try await admin.request(.GET, "/api/v1/vms")
            _ = await fleet.applyProbes([(address: "10.77.5.9", reading: ProbeReading(state: .up, roundTripSeconds: 0.001))])
            let up = try admin.decode(API.DashboardSummary.self, try await admin.request(.GET, "/api/v1/dashboard"))
            XCTAssertEqual([up.total, up.reachable], [1, 1], "the sweep's verdict counts on the next read")
            let listed = try admin.decode(ListResponse<VMListing>.self, try await admin.request(.GET, "/api/v1/vms"))
            XCTAssertEqual(listed.items.map(\.id), [vm.id])
            XCTAssertEqual(listed.items.map(\.reachable), [true])
            _ = await fleet.applyProbes([(address: "10.77.5.9", reading: ProbeReading(state: .up, roundTripSeconds: 0.002))])
            let slower = try admin.decode(ListResponse<VMListing>.self, try await admin.request(.GET, "/api/v1/vms"))
            XCTAssertTrue(slower.items.first?.reason.contains("2.0 ms") == true, "a new round trip shows: \(slower.items)")
        }
    }

    /// What this instance cannot see (another instance or the command line writing the same
    /// database) shows once the kept answer's lifetime has passed.
    func testAChangeMadeElsewhereShowsWithinTheLifetime() async throws {
        try await InMemoryWorld.run { world in
            _ = try await world.admin.request(.GET, "/api/v1/environments")
            XCTAssertEqual(world.app.keptAnswers.count, 1)
            let sql = try XCTUnwrap(world.app.db as? any SQLDatabase)
            try await sql.raw("UPDATE environments SET description = 'from elsewhere'").run()
            try await Task.sleep(for: .seconds(KeptAnswers.lifetime + 0.1))
            let later = try await world.admin.request(.GET, "/api/v1/environments")
            XCTAssertTrue(later.body.string.contains("from elsewhere"))
        }
    }

    /// A change during a build forgets the answer under way. The requests already waiting for
    /// it asked before the change and get it (not each a build of their own: with 50
    /// connections that was up to 50 page builds at once); a request after the change waits for
    /// a new build, and only that one is kept and replayed.
    func testWaitersGetAnAnswerForgottenWhileBuiltAndOnlyANewBuildIsKept() async throws {
        let kept = KeptAnswers()
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let key = KeptAnswers.Key(url: "/?per=100", authorization: nil, cookie: "flotilla_session=one", overHTTPS: false)
        let now = Date()
        func answer(_ text: String) -> KeptAnswers.Answer {
            KeptAnswers.Answer(
                headers: [:], body: ByteBuffer(string: text), validUntil: now + KeptAnswers.lifetime, verdictGeneration: 0, route: "/test")
        }
        func lookUp() -> KeptAnswers.Lookup { kept.lookUp(key, at: now, verdictGeneration: 0, on: loop) }

        guard case .build(let first) = lookUp() else { return XCTFail("the first request builds") }
        guard case .building(let waiting) = lookUp() else { return XCTFail("the second waits for that build") }
        kept.forgetAll(because: .liveHealth)
        guard case .build(let second) = lookUp() else { return XCTFail("a request after the change does not wait for the old build") }
        guard case .building(let waitingForSecond) = lookUp() else { return XCTFail("the next one waits for the new build") }

        kept.finish(first, for: key, with: answer("before"), verdictGeneration: 0, at: now)
        let handed = try await waiting.get()
        XCTAssertEqual(handed?.body.getString(at: 0, length: 6), "before", "the request that waited before the change gets the answer")
        XCTAssertEqual(kept.count, 0, "an answer forgotten while built is not kept")
        guard case .building = lookUp() else { return XCTFail("still waiting for the new build, never the old answer") }

        kept.finish(second, for: key, with: answer("after"), verdictGeneration: 0, at: now)
        let handedSecond = try await waitingForSecond.get()
        XCTAssertEqual(handedSecond?.body.getString(at: 0, length: 5), "after")
        guard case .kept(let replayed) = lookUp() else { return XCTFail("the new build is kept") }
        XCTAssertEqual(replayed.body.getString(at: 0, length: 5), "after")
        let statistics = kept.statistics
        XCTAssertEqual([statistics.built, statistics.waited, statistics.replayed, statistics.forgottenWhileBuilt], [2, 3, 1, 1])
        XCTAssertEqual(statistics.forgotten, [.liveHealth: 1])
    }

    /// An answer read steadily is built again shortly before its end by one request, which is
    /// itself answered from it; the others are still replayed the kept answer meanwhile, and the
    /// successor replaces it. A change during that build keeps nothing (the next request builds).
    func testAnAnswerEndingSoonIsBuiltAgainByOneRequestWhileItIsStillReplayed() async throws {
        let kept = KeptAnswers()
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let key = KeptAnswers.Key(url: "/api/v1/dashboard", authorization: "Bearer t", cookie: nil, overHTTPS: false)
        let start = Date()
        let nearTheEnd = start + KeptAnswers.lifetime - KeptAnswers.refreshAhead / 2
        func answer(_ text: String, at time: Date) -> KeptAnswers.Answer {
            KeptAnswers.Answer(
                headers: [:], body: ByteBuffer(string: text), validUntil: time + KeptAnswers.lifetime, verdictGeneration: 0, route: "/test")
        }
        func lookUp(at time: Date) -> KeptAnswers.Lookup { kept.lookUp(key, at: time, verdictGeneration: 0, on: loop) }

        guard case .build(let first) = lookUp(at: start) else { return XCTFail("the first request builds") }
        kept.finish(first, for: key, with: answer("one", at: start), verdictGeneration: 0, at: start)
        guard case .kept = lookUp(at: start + 0.1) else { return XCTFail("replayed while far from its end") }
        XCTAssertNotNil(kept.replay(key, at: start + 0.1, verdictGeneration: 0), "replayed before routing while far from its end")
        XCTAssertNil(
            kept.replay(key, at: nearTheEnd, verdictGeneration: 0), "near its end, not before routing: the middleware starts its rebuild")
        guard case .keptBuildingNext(let replayed, let next) = lookUp(at: nearTheEnd) else {
            return XCTFail("near its end, one request is replayed the answer and builds the next")
        }
        XCTAssertEqual(replayed.body.getString(at: 0, length: 3), "one")
        guard case .kept = lookUp(at: nearTheEnd) else { return XCTFail("the others are replayed the kept answer meanwhile") }
        XCTAssertNotNil(kept.replay(key, at: nearTheEnd, verdictGeneration: 0), "and before routing, its successor under way")
        XCTAssertNil(kept.replay(key, at: nearTheEnd, verdictGeneration: 1), "never under other sign-in verdicts")
        kept.finish(next, for: key, with: answer("two", at: nearTheEnd), verdictGeneration: 0, at: nearTheEnd)
        guard case .kept(let successor) = lookUp(at: start + KeptAnswers.lifetime + 0.1) else {
            return XCTFail("the successor is kept past the first answer's end")
        }
        XCTAssertEqual(successor.body.getString(at: 0, length: 3), "two")

        let later = nearTheEnd + KeptAnswers.lifetime - KeptAnswers.refreshAhead / 2
        guard case .keptBuildingNext(_, let forgotten) = lookUp(at: later) else { return XCTFail("the successor is built again too") }
        kept.forgetAll(because: .modelWrite)
        kept.finish(forgotten, for: key, with: answer("stale", at: later), verdictGeneration: 0, at: later)
        XCTAssertEqual(kept.count, 0, "a build a change forgot is not kept")
        guard case .build(let rebuild) = lookUp(at: later) else { return XCTFail("the next request builds") }
        kept.finish(rebuild, for: key, with: nil, verdictGeneration: 0, at: later)
        XCTAssertEqual(kept.statistics.refreshed, 2)
    }

    private static func csrfToken(in page: String) -> String? {
        guard let range = page.range(of: #"name="csrf-token" content="[^"]+""#, options: .regularExpression) else { return nil }
        return page[range].split(separator: "\"").last.map(String.init)
    }
}

/// Writes every environment's description with raw SQL, as background work does.
private struct DescribeEnvironmentsStep: StepKind {
    typealias Parameters = String
    static let name = "test.describe"
    static let rerunRule = RerunRule.idempotent

    func execute(_ description: String, context: StepContext) async throws {
        guard let sql = context.database as? any SQLDatabase else { throw FlotillaError(.unavailable, "needs SQL") }
        try await sql.raw("UPDATE environments SET description = \(bind: description)").run()
    }
}

/// Answers `204 No Content` and counts the requests it was asked (the routes behind the
/// kept answers' responder).
private final class CountingResponder: Responder, Sendable {
    private let asked = NIOLockedValueBox(0)

    var count: Int { asked.withLockedValue { $0 } }

    func respond(to request: Request) -> EventLoopFuture<Response> {
        asked.withLockedValue { $0 += 1 }
        return request.eventLoop.makeSucceededFuture(Response(status: .noContent))
    }
}
