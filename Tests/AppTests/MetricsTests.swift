import Fluent
import SQLKit
import VSphere
import XCTVapor

@testable import App

/// The metrics store (SPEC BEY-7) and the chart API (DASH-5): collection from vcsim's
/// performance manager, rollups checked against sums computed here from the inserted samples,
/// retention, gaps, who may read series, and the Prometheus endpoint's token.
final class MetricsTests: XCTestCase {
    /// No background collection or sweeps: each test runs the passes it checks.
    static let settings = ["FLOTILLA_SYNC_SECONDS": "0", "FLOTILLA_METRICS_SECONDS": "0", "FLOTILLA_REACHABILITY_SECONDS": "0"]

    func testCollectorFillsATwoHourSeriesFromVcsim() async throws {
        let vcsim = try VcsimForTest(vms: 3)
        defer { vcsim.stop() }
        try await TestApp.run(Self.settings) { app in
            let fixture = try await MetricsFixture.make(app, url: vcsim.url, thumbprint: vcsim.thumbprint)
            let found = try await VSphereConnection.find(fixture.connectionID, on: app.db)
            let connection = try XCTUnwrap(found)
            let machines = try await app.flotilla.vsphere.endpoint(for: connection).virtualMachines(fields: .overview)
                .filter { !$0.isTemplate && $0.powerState == .poweredOn }
            XCTAssertEqual(machines.count, 3)
            let running = try await fixture.addVM("web-01", reference: machines[0].reference.value)
            let second = try await fixture.addVM("web-02", reference: machines[1].reference.value)
            let off = try await fixture.addVM("web-03", reference: machines[2].reference.value, powerState: "poweredOff")

            // Two hours back: vcsim generates samples for any window (vCenter keeps one hour).
            let collector = MetricsCollector(
                database: app.db, vsphere: app.flotilla.vsphere, logger: app.logger, platformMetrics: app.platformMetrics,
                backfillSeconds: 7200, batchSize: 1)
            try await collector.pass()

            for vm in [running, second] {
                let series = try await fixture.series(vm, "2h")
                XCTAssertEqual(series.stepSeconds, 20)
                XCTAssertEqual(series.points, 360)
                let cpu = series.cpu.avg.compactMap { $0 }
                let memory = series.memory.avg.compactMap { $0 }
                // vcsim leaves out zero values and the newest tick may fall just after the window.
                XCTAssertGreaterThanOrEqual(cpu.count, 340, "cpu points")
                XCTAssertGreaterThanOrEqual(memory.count, 340, "memory points")
                XCTAssertTrue(cpu.allSatisfy { (0...100).contains($0) } && memory.allSatisfy { (0...100).contains($0) })
                XCTAssertGreaterThan(Set(cpu).count, 10, "values vary like vcsim's generated data")
                XCTAssertNil(series.cpu.min, "20 s samples have no spread")
            }
            let offSeries = try await fixture.series(off, "2h")
            XCTAssertTrue(offSeries.cpu.avg.allSatisfy { $0 == nil }, "a powered-off VM is not collected")

            // A second pass re-reads the newest ticks; each tick is stored once.
            let before = try await fixture.sampleCount()
            try await collector.pass()
            let after = try await fixture.sampleCount()
            XCTAssertLessThanOrEqual(after - before, 2 * 2, "at most one new tick per VM and second")
            let exposition = try await app.platformMetrics.exposition(database: app.db, keptAnswers: app.keptAnswers.statistics)
            XCTAssertTrue(exposition.contains("flotilla_metrics_collected_vms 2.0"), exposition)
        }
    }

    func testRollupsKeepMinimumAverageAndMaximumOfTheirSamples() async throws {
        try await TestApp.run(Self.settings) { app in
            let fixture = try await MetricsFixture.make(app)
            let vms = [try await fixture.addVM("web-01"), try await fixture.addVM("web-02")]
            let now = Int64(Date().timeIntervalSince1970)
            // Three hours of samples ending 10 minutes ago, with holes and missing memory values.
            let end = MetricResolution.raw.bucket(now - 600)
            var samples: [MetricSample] = []
            var random = SystemRandomNumberGenerator()
            for vm in vms {
                for at in stride(from: end - 3 * 3600, to: end, by: 20) where Int.random(in: 0..<10, using: &random) != 0 {
                    samples.append(
                        MetricSample(
                            vmID: vm, at: at, cpu: Double.random(in: 0...100, using: &random),
                            memory: Int.random(in: 0..<5, using: &random) == 0 ? nil : Double.random(in: 0...100, using: &random)))
                }
            }
            try await MetricsStore(database: app.db).insert(samples)
            let maintenance = MetricsMaintenance(database: app.db)
            try await maintenance.pass()

            let fiveMinutes = try await fixture.rollups(.fiveMinutes)
            let hours = try await fixture.rollups(.hour)
            try Self.assertRollups(fiveMinutes, summarise: samples, step: 300, upTo: MetricResolution.fiveMinutes.bucket(now - 120))
            try Self.assertRollups(hours, summarise: samples, step: 3600, upTo: MetricResolution.hour.bucket(now - 120))
            XCTAssertGreaterThanOrEqual(hours.count, 2 * 2, "two complete hours per VM at least")

            // A repeated pass, even from scratch (marks lost, another instance), rewrites the same rows.
            try await maintenance.pass()
            let sql = try XCTUnwrap(app.db as? any SQLDatabase)
            try await sql.delete(from: MetricTables.marks).run()
            try await maintenance.pass()
            let fiveMinutesAgain = try await fixture.rollups(.fiveMinutes)
            let hoursAgain = try await fixture.rollups(.hour)
            XCTAssertEqual(fiveMinutesAgain, fiveMinutes)
            XCTAssertEqual(hoursAgain, hours)

            // The 24 h chart shows the rollups' spread.
            let series = try await fixture.series(vms[0], "24h")
            XCTAssertEqual(series.stepSeconds, 300)
            XCTAssertEqual(series.points, 288)
            let first = try XCTUnwrap(fiveMinutes.first { $0.vmID == vms[0] })
            let index = Int((first.at - Int64(series.start.timeIntervalSince1970)) / 300)
            XCTAssertEqual(try XCTUnwrap(series.cpu.max?[index]), try XCTUnwrap(first.cpu.max), accuracy: 1e-9)
            XCTAssertEqual(try XCTUnwrap(series.cpu.min?[index]), try XCTUnwrap(first.cpu.min), accuracy: 1e-9)
        }
    }

    func testRetentionDeletesWhatIsPastItsAge() async throws {
        try await TestApp.run(Self.settings) { app in
            let fixture = try await MetricsFixture.make(app)
            let vm = try await fixture.addVM("web-01")
            let now = Int64(Date().timeIntervalSince1970)
            let day: Int64 = 86_400
            let store = MetricsStore(database: app.db)
            try await store.insert([
                MetricSample(vmID: vm, at: MetricResolution.raw.bucket(now - day - 60), cpu: 1, memory: 1),
                MetricSample(vmID: vm, at: MetricResolution.raw.bucket(now - day + 600), cpu: 2, memory: 2),
            ])
            for (resolution, age) in [(MetricResolution.fiveMinutes, 30 * day), (.hour, 365 * day)] {
                try await fixture.insertRollup(vm, resolution, at: resolution.bucket(now - age - 3600))
                try await fixture.insertRollup(vm, resolution, at: resolution.bucket(now - age + 3 * 3600))
            }
            try await MetricsMaintenance(database: app.db).deleteExpired(now: now)

            let sql = try XCTUnwrap(app.db as? any SQLDatabase)
            let samples = try await sql.select().column("cpu").from(MetricTables.samples).all(decoding: Sample.self)
            XCTAssertEqual(samples.map(\.cpu), [2])
            for (resolution, age) in [(MetricResolution.fiveMinutes, 30 * day), (.hour, 365 * day)] {
                let kept = try await fixture.rollups(resolution).map(\.at)
                XCTAssertEqual(kept, [resolution.bucket(now - age + 3 * 3600)], "\(resolution)")
            }
        }
    }

    func testGapsAreNullsNotZeros() async throws {
        try await TestApp.run(Self.settings) { app in
            let fixture = try await MetricsFixture.make(app)
            let vm = try await fixture.addVM("web-01")
            let now = Int64(Date().timeIntervalSince1970)
            let end = MetricResolution.raw.bucket(now)
            let gap = (end - 3600)..<(end - 3000)
            let samples = stride(from: end - 7200 + 20, through: end, by: 20).filter { !gap.contains($0) }.map {
                MetricSample(vmID: vm, at: $0, cpu: 0, memory: 50)
            }
            try await MetricsStore(database: app.db).insert(samples)

            let series = try await fixture.series(vm, "2h")
            let start = Int64(series.start.timeIntervalSince1970)
            for (index, value) in series.cpu.avg.enumerated() {
                let at = start + Int64(index) * 20
                if gap.contains(at) || at < end - 7200 + 20 {
                    XCTAssertNil(value, "no sample at \(at) is a gap")
                    XCTAssertNil(series.memory.avg[index])
                } else {
                    XCTAssertEqual(value, 0, "a measured zero stays a zero")
                    XCTAssertEqual(series.memory.avg[index], 50)
                }
            }
            XCTAssertEqual(series.cpu.avg.filter { $0 == nil }.count, 30)
            // Nulls travel as JSON nulls.
            let raw = try await fixture.admin.request(.GET, "/api/v1/vms/\(vm)/metrics?range=2h").body.string
            XCTAssertTrue(raw.contains("null"), raw.prefix(200).description)
        }
    }

    func testOrdinaryAdministratorsReadSeriesAnonymousVisitorsDoNot() async throws {
        try await TestApp.run(Self.settings) { app in
            let fixture = try await MetricsFixture.make(app)
            let vm = try await fixture.addVM("web-01")
            try await createUser(fixture.admin, "olga", role: .ordinary)
            let ordinary = try TestClient(app)
            try await ordinary.signIn("olga", "password-123")
            let answer = try await ordinary.request(.GET, "/api/v1/vms/\(vm)/metrics")
            XCTAssertEqual(answer.status, .ok)
            XCTAssertEqual(try ordinary.decode(API.MetricSeriesBody.self, answer).range, "2h", "2 h by default")

            let page = try await ordinary.request(.GET, "/vms/\(vm)")
            XCTAssertEqual(page.status, .ok)
            XCTAssertTrue(page.body.string.contains(#"data-vm-metrics="/api/v1/vms/\#(vm.uuidString)/metrics""#), "the charts")
            XCTAssertTrue(page.body.string.contains(#"<script src="/js/vm-metrics.js""#))

            let anonymous = try TestClient(app)
            let refused = try await anonymous.request(.GET, "/api/v1/vms/\(vm)/metrics?range=1h")
            XCTAssertEqual(refused.status, .unauthorized)
            XCTAssertFalse(refused.body.string.contains("avg"))
            let anonymousPage = try await anonymous.request(.GET, "/vms/\(vm)")
            XCTAssertEqual(anonymousPage.status, .seeOther)
            XCTAssertFalse(anonymousPage.body.string.contains("data-vm-metrics"))

            let bad = try await ordinary.request(.GET, "/api/v1/vms/\(vm)/metrics?range=3w")
            XCTAssertEqual(bad.status, .badRequest)
            XCTAssertTrue(bad.body.string.contains("1h, 2h, 6h, 24h, 7d"), bad.body.string)
            let unknown = try await ordinary.request(.GET, "/api/v1/vms/\(UUID())/metrics")
            XCTAssertEqual(unknown.status, .notFound)
        }
    }

    func testPrometheusEndpointIsOffWithoutATokenAndChecksIt() async throws {
        try await TestApp.run(Self.settings) { app in
            let answer = try await TestClient(app).request(.GET, "/metrics")
            XCTAssertEqual(answer.status, .notFound)
        }
        let token = "metrics-token-0123456789"
        try await TestApp.run(Self.settings.merging(["FLOTILLA_METRICS_TOKEN": token]) { $1 }) { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            let withSession = try await admin.request(.GET, "/metrics")
            XCTAssertEqual(withSession.status, .unauthorized, "a session is not the token")
            for _ in 1...2 {
                let summary = try await admin.request(.GET, "/api/v1/dashboard")
                XCTAssertEqual(summary.status, .ok)
            }
            let scraper = try TestClient(app)
            scraper.bearer = "metrics-token-wrong-456789"
            let wrongToken = try await scraper.request(.GET, "/metrics")
            XCTAssertEqual(wrongToken.status, .unauthorized)

            app.platformMetrics.recordSweep(duration: .milliseconds(40), vmsByState: ["up": 3, "poweredOff": 1])
            app.platformMetrics.recordSweep(duration: .milliseconds(30), vmsByState: ["up": 4])
            scraper.bearer = token
            let answer = try await scraper.request(.GET, "/metrics")
            XCTAssertEqual(answer.status, .ok)
            let text = answer.body.string
            XCTAssertTrue(text.contains(#"flotilla_http_requests_total{method="POST",route="/api/v1/login",status="200"} 1"#), text)
            XCTAssertTrue(text.contains(#"flotilla_http_request_duration_seconds_count{method="POST",route="/api/v1/login"} 1"#), text)
            XCTAssertTrue(text.contains(#"flotilla_jobs{state="queued"} 0.0"#), text)
            XCTAssertTrue(text.contains(#"flotilla_vms{state="up"} 4.0"#), text)
            XCTAssertTrue(text.contains(#"flotilla_vms{state="poweredOff"} 0.0"#), text)
            XCTAssertTrue(text.contains("flotilla_reachability_sweep_duration_seconds_count 2"), text)
            XCTAssertTrue(text.contains(#"flotilla_kept_answers{outcome="replayed"} 1.0"#), "the second summary was replayed: \(text)")
            XCTAssertTrue(
                text.contains(#"flotilla_http_requests_total{method="GET",route="/api/v1/dashboard",status="200"} 2"#),
                "the replayed summary is counted under its route like the built one: \(text)")
            XCTAssertTrue(text.contains(#"flotilla_kept_answers_forgotten{cause="request"} 1.0"#), "the sign-in forgot them: \(text)")
            XCTAssertFalse(text.contains(token))
        }
        XCTAssertThrowsError(try FlotillaConfig(values: ["FLOTILLA_METRICS_TOKEN": "short"]))
    }
}

private struct Sample: Decodable {
    var cpu: Double
}

/// A connection, a role and an environment, and VM records pointing at vSphere references.
private struct MetricsFixture {
    let app: Application
    let admin: TestClient
    let connectionID: UUID
    let roleID: UUID
    let environmentID: UUID

    struct Rollup: Equatable {
        struct Band: Equatable {
            var min: Double?
            var avg: Double?
            var max: Double?
            var count: Int
        }
        var vmID: UUID
        var at: Int64
        var cpu: Band
        var memory: Band
    }

    static func make(
        _ app: Application, url: String = "https://127.0.0.1:9/sdk", thumbprint: String? = nil
    ) async throws
        -> MetricsFixture
    {
        let admin = try TestClient(app)
        try await admin.signIn("admin", TestApp.adminPassword)
        let connection = try admin.decode(
            API.ConnectionBody.self,
            try await admin.request(
                .POST, "/api/v1/connections",
                json: Connections.Input(
                    name: "lab", url: url, username: VcsimForTest.username, password: VcsimForTest.password, thumbprint: thumbprint)))
        // Stored directly: the roles API checks the template on vSphere, which these tests leave out.
        let role = Role()
        role.name = "web"
        role.$connection.id = connection.id
        role.template = "tpl-web"
        role.sshUser = "root"
        role.networkStyle = "ifupdown"
        role.services = "sshd"
        try await role.create(on: app.db)
        let environment = try admin.decode(
            API.EnvironmentBody.self,
            try await admin.request(.POST, "/api/v1/environments", json: API.EnvironmentInput(name: "metrics", description: nil)))
        return MetricsFixture(
            app: app, admin: admin, connectionID: connection.id, roleID: try role.requireID(), environmentID: environment.id)
    }

    func addVM(_ name: String, reference: String? = nil, powerState: String = "poweredOn") async throws -> UUID {
        let vm = VM()
        vm.$environment.id = environmentID
        vm.$role.id = roleID
        vm.hostName = name
        vm.ip = "10.77.9.\(try await VM.query(on: app.db).count() + 2)"
        vm.prefixLength = 16
        vm.gateway = "10.77.0.1"
        vm.passwordSealed = try app.flotilla.secrets.seal("Guest-pass-1")
        vm.vsphereReference = reference ?? "vm-\(name)"
        vm.status = .ready
        vm.powerState = powerState
        vm.notes = ""
        try await vm.create(on: app.db)
        return try vm.requireID()
    }

    func series(_ vm: UUID, _ range: String) async throws -> API.MetricSeriesBody {
        let answer = try await admin.request(.GET, "/api/v1/vms/\(vm)/metrics?range=\(range)")
        XCTAssertEqual(answer.status, .ok, answer.body.string)
        return try admin.decode(API.MetricSeriesBody.self, answer)
    }

    func sampleCount() async throws -> Int {
        let sql = try XCTUnwrap(app.db as? any SQLDatabase)
        return try await sql.raw("SELECT COUNT(*) AS n FROM \(ident: MetricTables.samples)").first()?.decode(column: "n", as: Int.self) ?? 0
    }

    func rollups(_ resolution: MetricResolution) async throws -> [Rollup] {
        let sql = try XCTUnwrap(app.db as? any SQLDatabase)
        let rows = try await sql.raw(
            """
            SELECT * FROM \(ident: MetricTables.rollups) WHERE resolution = \(bind: resolution.rawValue) ORDER BY at
            """
        ).all()
        return try rows.map { row in
            func band(_ name: String) throws -> Rollup.Band {
                Rollup.Band(
                    min: try row.decode(column: name + "_min", as: Double?.self),
                    avg: try row.decode(column: name + "_avg", as: Double?.self),
                    max: try row.decode(column: name + "_max", as: Double?.self),
                    count: try row.decode(column: name + "_count", as: Int.self))
            }
            return Rollup(
                vmID: try row.decode(column: "vm_id", as: UUID.self), at: try row.decode(column: "at", as: Int64.self),
                cpu: try band("cpu"), memory: try band("memory"))
        }.sorted { ($0.at, $0.vmID.uuidString) < ($1.at, $1.vmID.uuidString) }
    }

    func insertRollup(_ vm: UUID, _ resolution: MetricResolution, at: Int64) async throws {
        let sql = try XCTUnwrap(app.db as? any SQLDatabase)
        try await sql.insert(into: MetricTables.rollups)
            .columns(
                "vm_id", "resolution", "at", "cpu_min", "cpu_avg", "cpu_max", "cpu_count", "memory_min", "memory_avg", "memory_max",
                "memory_count"
            )
            .values(
                SQLBind(vm), SQLBind(resolution.rawValue), SQLBind(at), SQLBind(1.0), SQLBind(2.0), SQLBind(3.0), SQLBind(15),
                SQLBind(1.0), SQLBind(2.0), SQLBind(3.0), SQLBind(15)
            )
            .run()
    }
}

extension MetricsTests {
    /// Every bucket before `upTo` that has samples has exactly one rollup, equal to the
    /// minimum, mean and maximum computed here from the samples themselves.
    fileprivate static func assertRollups(
        _ rollups: [MetricsFixture.Rollup], summarise samples: [MetricSample], step: Int64, upTo: Int64
    ) throws {
        var expected: [String: MetricsFixture.Rollup] = [:]
        let grouped = Dictionary(grouping: samples.filter { $0.at / step * step < upTo }) { "\($0.vmID) \($0.at / step * step)" }
        for (key, bucket) in grouped {
            func band(_ values: [Double]) -> MetricsFixture.Rollup.Band {
                MetricsFixture.Rollup.Band(
                    min: values.min(), avg: values.isEmpty ? nil : values.reduce(0, +) / Double(values.count), max: values.max(),
                    count: values.count)
            }
            expected[key] = MetricsFixture.Rollup(
                vmID: bucket[0].vmID, at: bucket[0].at / step * step, cpu: band(bucket.compactMap(\.cpu)),
                memory: band(bucket.compactMap(\.memory)))
        }
        let actual = Dictionary(uniqueKeysWithValues: rollups.map { ("\($0.vmID) \($0.at)", $0) })
        XCTAssertEqual(Set(actual.keys), Set(expected.keys), "one rollup per bucket with samples (step \(step))")
        for (key, want) in expected {
            let got = try XCTUnwrap(actual[key])
            for (gotBand, wantBand) in [(got.cpu, want.cpu), (got.memory, want.memory)] {
                XCTAssertEqual(gotBand.count, wantBand.count, key)
                XCTAssertEqual(gotBand.min ?? -1, wantBand.min ?? -1, accuracy: 1e-9, key)
                XCTAssertEqual(gotBand.max ?? -1, wantBand.max ?? -1, accuracy: 1e-9, key)
                XCTAssertEqual(gotBand.avg ?? -1, wantBand.avg ?? -1, accuracy: 1e-9, key)
            }
        }
    }
}
