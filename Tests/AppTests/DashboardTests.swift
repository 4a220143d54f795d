import Fluent
import NIOConcurrencyHelpers
import Reachability
import VSphere
import XCTVapor

@testable import App

/// The dashboard's rules without root or vcsim: how a VM's health is worked out (DASH-6), list
/// filters and pages, who sees the page and its event stream (USR-6), notes, batch power, and
/// the in-memory inventory feed (power changes and drift).
final class DashboardTests: XCTestCase {
    // MARK: health rule

    func testPowerStateWinsOverAnyProbe() {
        let answering = ProbeReading(state: .up, roundTripSeconds: 0.001)
        XCTAssertEqual(HealthRule.health(probe: answering, baselineSeconds: 0.001, powerState: "poweredOff", guest: .running), .poweredOff)
        XCTAssertEqual(HealthRule.health(probe: nil, baselineSeconds: nil, powerState: "suspended", guest: .unknown), .suspended)
    }

    func testSilentVMSaysWhyFromPowerAndGuest() {
        let silent = ProbeReading(state: .down, consecutiveMisses: 3)
        XCTAssertEqual(
            HealthRule.health(probe: silent, baselineSeconds: nil, powerState: "poweredOn", guest: .notRunning), .guestNotRunning)
        XCTAssertEqual(
            HealthRule.health(probe: silent, baselineSeconds: nil, powerState: "poweredOn", guest: .running), .networkUnreachable)
        // vSphere silent too (vCenter down): the probe alone says the network does not reach it.
        XCTAssertEqual(HealthRule.health(probe: silent, baselineSeconds: nil, powerState: nil, guest: .unknown), .networkUnreachable)
        XCTAssertEqual(
            HealthRule.reason(.networkUnreachable, probe: silent, guest: .running),
            "network unreachable: guest running, 3 probes unanswered")
    }

    func testDegradedOnLossOrLatencyFarAboveBaseline() {
        let lossy = ProbeReading(state: .up, roundTripSeconds: 0.001, consecutiveMisses: 1)
        XCTAssertEqual(HealthRule.health(probe: lossy, baselineSeconds: 0.001, powerState: "poweredOn", guest: .running), .degraded)
        let slow = ProbeReading(state: .up, roundTripSeconds: 0.2)
        XCTAssertEqual(HealthRule.health(probe: slow, baselineSeconds: 0.001, powerState: "poweredOn", guest: .running), .degraded)
        // Twice a sub-millisecond baseline is jitter, not degradation.
        let jitter = ProbeReading(state: .up, roundTripSeconds: 0.0008)
        XCTAssertEqual(HealthRule.health(probe: jitter, baselineSeconds: 0.0004, powerState: "poweredOn", guest: .running), .up)
        XCTAssertEqual(
            HealthRule.health(probe: ProbeReading(state: .unknown), baselineSeconds: nil, powerState: "poweredOn", guest: .running),
            .unknown)
    }

    func testGuestActivityFromVSphereProperties() {
        XCTAssertEqual(GuestActivity(toolsRunningStatus: "guestToolsRunning", heartbeat: "gray", ipAddress: nil), .running)
        XCTAssertEqual(GuestActivity(toolsRunningStatus: "guestToolsNotRunning", heartbeat: "gray", ipAddress: "10.77.0.5"), .running)
        XCTAssertEqual(GuestActivity(toolsRunningStatus: "guestToolsNotRunning", heartbeat: "gray", ipAddress: nil), .notRunning)
        XCTAssertEqual(GuestActivity(toolsRunningStatus: nil, heartbeat: "red", ipAddress: nil), .notRunning)
        XCTAssertEqual(GuestActivity(toolsRunningStatus: nil, heartbeat: nil, ipAddress: ""), .unknown)
    }

    func testReachabilitySettingsAreChecked() throws {
        let defaults = try FlotillaConfig(values: [:])
        XCTAssertEqual(defaults.reachabilitySeconds, 1)
        XCTAssertEqual(defaults.reachabilityTimeoutMilliseconds, 400)
        XCTAssertEqual(defaults.reachabilityDownAfter, 3)
        XCTAssertEqual(defaults.reachabilityMinimumTimeoutMilliseconds, 100)
        for (key, value) in [
            ("FLOTILLA_REACHABILITY_SECONDS", "61"), ("FLOTILLA_REACHABILITY_TIMEOUT_MS", "500"), ("FLOTILLA_REACHABILITY_DOWN_AFTER", "0"),
            ("FLOTILLA_REACHABILITY_PORT", "70000"), ("FLOTILLA_REACHABILITY_RETRIES", "11"),
            ("FLOTILLA_REACHABILITY_MIN_TIMEOUT_MS", "401"), ("FLOTILLA_REACHABILITY_MIN_TIMEOUT_MS", "0"),
        ] {
            XCTAssertThrowsError(try FlotillaConfig(values: [key: value]), "\(key)=\(value)") { error in
                XCTAssertEqual((error as? ConfigError)?.setting, key)
            }
        }
        XCTAssertEqual(
            try FlotillaConfig(values: ["FLOTILLA_REACHABILITY_SECONDS": "5", "FLOTILLA_REACHABILITY_TIMEOUT_MS": "2000"])
                .reachabilityTimeoutMilliseconds, 2000)
    }

    // MARK: fleet state

    func testFleetCountsRolesAndReplaysChangesInItsWindow() async {
        let fleet = FleetStatus()
        let connection = UUID()
        let web = FleetStatus.Record(
            id: UUID(), hostName: "web1", ip: "10.77.0.10", role: "web", connectionID: connection, reference: "vm-1",
            powerState: "poweredOn")
        let redis = FleetStatus.Record(
            id: UUID(), hostName: "redis1", ip: "10.77.0.11", role: "redis", connectionID: connection, reference: "vm-2",
            powerState: "poweredOn")
        await fleet.setRecords([web, redis])
        var summary = await fleet.summary()
        XCTAssertEqual(summary.total, 2)
        XCTAssertEqual(summary.checking, 2)
        let start = summary.sequence

        let up = await fleet.applyProbes([
            ("10.77.0.10", ProbeReading(state: .up, roundTripSeconds: 0.001)),
            ("10.77.0.11", ProbeReading(state: .up, roundTripSeconds: 0.001)),
        ])
        XCTAssertEqual(up.map(\.health), [.up, .up])
        let off = await fleet.applyMachine(connectionID: connection, reference: "vm-1", powerState: "poweredOff", guest: .notRunning)
        XCTAssertEqual(off.map(\.health), [.poweredOff])
        XCTAssertEqual(off.first?.vmID, web.id)
        // Same state again is no change.
        let again = await fleet.applyMachine(connectionID: connection, reference: "vm-1", powerState: "poweredOff", guest: .notRunning)
        XCTAssertEqual(again, [])

        summary = await fleet.summary()
        XCTAssertEqual(summary.reachable, 1)
        XCTAssertEqual(summary.unreachable, 1)
        XCTAssertEqual(summary.roles.map(\.role), ["redis", "web"])
        XCTAssertEqual(summary.roles.first { $0.role == "web" }?.unreachable, 1)
        let replay = await fleet.changes(after: start)
        XCTAssertEqual(replay?.map(\.health), [.up, .up, .poweredOff])
        let none = await fleet.changes(after: summary.sequence)
        XCTAssertEqual(none?.count, 0)
    }

    /// The VMs are read again every few seconds; the same records forget no kept answer (they
    /// change nothing a page shows), a changed one or a new sweep's readings do.
    func testOnlyWhatChangesAPageForgetsItsKeptAnswers() async {
        let told = NIOLockedValueBox(0)
        let fleet = FleetStatus(whenChanged: { told.withLockedValue { $0 += 1 } })
        var record = FleetStatus.Record(
            id: UUID(), hostName: "web1", ip: "10.77.0.10", role: "web", connectionID: UUID(), reference: "vm-1", powerState: "poweredOn")
        await fleet.setRecords([record])
        _ = await fleet.applyProbes([("10.77.0.10", ProbeReading(state: .up, roundTripSeconds: 0.001))])
        let afterSweep = told.withLockedValue { $0 }
        XCTAssertGreaterThan(afterSweep, 0)

        await fleet.setRecords([record])
        XCTAssertEqual(told.withLockedValue { $0 }, afterSweep, "the same records again change nothing shown")
        _ = await fleet.applyProbes([("10.77.0.10", ProbeReading(state: .up, roundTripSeconds: 0.002))])
        XCTAssertEqual(told.withLockedValue { $0 }, afterSweep + 1, "a new round trip shows in the reason")
        record.powerState = "poweredOff"
        await fleet.setRecords([record])
        XCTAssertGreaterThan(told.withLockedValue { $0 }, afterSweep + 1, "a changed record shows")
    }

    func testASilentMonitorAgentIsTheReasonAnAnsweringVMIsDegraded() async {
        let fleet = FleetStatus()
        let record = FleetStatus.Record(
            id: UUID(), hostName: "web1", ip: "10.77.0.10", role: "web", connectionID: UUID(), reference: "vm-1", powerState: "poweredOn")
        await fleet.setRecords([record])
        _ = await fleet.applyProbes([("10.77.0.10", ProbeReading(state: .up, roundTripSeconds: 0.0004))])
        let silentSince = Date(timeIntervalSince1970: 1_800_000_000)
        let silent = await fleet.setSilentAgents([record.id: silentSince])
        XCTAssertEqual(silent.map(\.health), [.degraded])
        XCTAssertEqual(silent.first?.reason, "degraded: monitor agent silent since 2027-01-15T08:00:00Z, ICMP 0.4 ms")
        XCTAssertTrue(silent.first?.reachable ?? false, "the VM answers: it counts as reachable on the cards")
        // Unreachable as well: the network is the reason, the silent agent is added.
        XCTAssertEqual(
            HealthRule.reason(
                .networkUnreachable, probe: ProbeReading(state: .down, consecutiveMisses: 3), guest: .running,
                agentSilentSince: silentSince),
            "network unreachable: guest running, 3 probes unanswered; monitor agent silent since 2027-01-15T08:00:00Z")
        let again = await fleet.setSilentAgents([record.id: silentSince])
        XCTAssertEqual(again, [], "the same silence is no change")
        let heard = await fleet.setSilentAgents([:])
        XCTAssertEqual(heard.map(\.health), [.up], "the next heartbeat ends it")
    }

    func testInstancesThatDoNotSweepShowTheLeadersVerdicts() async throws {
        try await InMemoryWorld.run { world in
            let vm = try await world.addReadyVM("web1", "10.77.5.11")
            let records = try await DashboardRuntime.records(on: world.app.db)
            let leader = FleetStatus()
            let follower = FleetStatus()
            await leader.setRecords(records)
            await follower.setRecords(records)
            _ = await leader.setLeading(true)
            let shared = SharedHealth(database: world.app.db)
            try await shared.write(await leader.applyProbes([("10.77.5.11", ProbeReading(state: .up, roundTripSeconds: 0.001))]))

            var read = try await shared.read(since: nil)
            XCTAssertEqual(read.verdicts[vm.id]?.health, .up)
            let ignored = await leader.applyShared(read.verdicts)
            XCTAssertEqual(ignored, [], "the leader keeps its own verdicts")
            let taken = await follower.applyShared(read.verdicts)
            XCTAssertEqual(taken.map(\.health), [.up])
            XCTAssertEqual(taken.first?.reason, "up: ICMP 1.0 ms")

            // The VM goes down: the follower reads only what changed since (with the overlap).
            let down = await leader.applyProbes([("10.77.5.11", ProbeReading(state: .down, consecutiveMisses: 3))])
            try await shared.write(down, now: try XCTUnwrap(read.newest).addingTimeInterval(10))
            read = try await shared.read(since: try XCTUnwrap(read.newest).addingTimeInterval(6))
            XCTAssertEqual(read.verdicts.count, 1)
            let followed = await follower.applyShared(read.verdicts)
            XCTAssertEqual(followed.map(\.health), [.networkUnreachable])
            let summary = await follower.summary()
            XCTAssertEqual([summary.total, summary.unreachable], [1, 1])

            // An instance that stops leading forgets its probes and follows the new leader.
            _ = await leader.setLeading(false)
            let now = try await shared.read(since: nil)
            _ = await leader.applyShared(now.verdicts)
            let entry = await leader.entry(vm.id)
            XCTAssertEqual(entry?.health, .networkUnreachable)
        }
    }

    func testAReaderTooFarBehindIsToldToReload() async {
        let fleet = FleetStatus()
        let connection = UUID()
        await fleet.setRecords([
            FleetStatus.Record(
                id: UUID(), hostName: "a", ip: "10.77.0.1", role: "web", connectionID: connection, reference: "vm-1", powerState: nil)
        ])
        for index in 0..<(FleetStatus.window + 10) {
            _ = await fleet.applyMachine(
                connectionID: connection, reference: "vm-1", powerState: index.isMultiple(of: 2) ? "poweredOff" : "suspended",
                guest: .unknown)
        }
        let behind = await fleet.changes(after: 1)
        XCTAssertNil(behind)
        let recent = await fleet.changes(after: await fleet.summary().sequence - 5)
        XCTAssertEqual(recent?.count, 5)
    }

    // MARK: list filters

    func testFilterParsing() throws {
        let filter = try VMDirectory.Filter(QueryParameters("q=Lab%20W_1%25&role=web"))
        XCTAssertEqual(filter.query, "labw1")
        XCTAssertEqual(filter.namePattern, "%l%a%b%w%1%")
        XCTAssertEqual(filter.role, "web")
        XCTAssertEqual(filter.queryItems.map(\.0), ["q", "role"])
        XCTAssertNil(try VMDirectory.Filter(QueryParameters("q=%25%25")).query)
        XCTAssertThrowsError(try VMDirectory.Filter(QueryParameters("environment=nope")))
        XCTAssertThrowsError(try VMDirectory.Filter(QueryParameters("q=" + String(repeating: "a", count: 101))))
        XCTAssertEqual(try DashboardEvents.startSequence(lastEventID: "12", since: "3"), 12)
        XCTAssertEqual(try DashboardEvents.startSequence(lastEventID: nil, since: "3"), 3)
        XCTAssertNil(try DashboardEvents.startSequence(lastEventID: nil, since: nil))
        XCTAssertThrowsError(try DashboardEvents.startSequence(lastEventID: "-1", since: nil))
    }

    func testListPagesSearchesFuzzilyAndFiltersByRole() async throws {
        try await InMemoryWorld.run { world in
            for index in 1...12 { try await world.addReadyVM("web\(index)", "10.77.5.\(index + 10)") }
            try await world.addReadyVM("cache1", "10.77.5.40", role: "redis")
            let first = try world.admin.decode(ListResponse<VMListing>.self, try await world.admin.request(.GET, "/api/v1/vms"))
            XCTAssertEqual(first.total, 13)
            XCTAssertEqual(first.items.count, 10)
            XCTAssertEqual(first.per, 10)
            let second = try world.admin.decode(
                ListResponse<VMListing>.self, try await world.admin.request(.GET, "/api/v1/vms?page=2&per=10"))
            XCTAssertEqual(second.items.count, 3)
            let fuzzy = try world.admin.decode(ListResponse<VMListing>.self, try await world.admin.request(.GET, "/api/v1/vms?q=wb12"))
            XCTAssertEqual(fuzzy.items.map(\.hostName), ["web12"])
            let byIP = try world.admin.decode(ListResponse<VMListing>.self, try await world.admin.request(.GET, "/api/v1/vms?q=10.77.5.40"))
            XCTAssertEqual(byIP.items.map(\.hostName), ["cache1"])
            let byRole = try world.admin.decode(ListResponse<VMListing>.self, try await world.admin.request(.GET, "/api/v1/vms?role=redis"))
            XCTAssertEqual(byRole.items.map(\.hostName), ["cache1"])
            let badSize = try await world.admin.request(.GET, "/api/v1/vms?per=30")
            XCTAssertEqual(badSize.status, .badRequest)

            // The page: role cards link to the filtered list, the filter stays in the pagination links.
            let fleet = world.app.fleetStatus
            try await waitFor("every VM is watched") { await fleet.summary().total == 13 }
            let page = try await world.admin.request(.GET, "/?role=web&per=10")
            XCTAssertEqual(page.status, .ok)
            XCTAssertTrue(page.body.string.contains("href=\"/?role=redis\""), "a card per role")
            XCTAssertTrue(
                page.body.string.contains("/?role=web&amp;page=2&amp;per=10") || page.body.string.contains("/?role=web&page=2&per=10"))
            XCTAssertFalse(page.body.string.contains(">cache1<"))
            let search = try await world.admin.request(.GET, "/search?q=stag")
            XCTAssertTrue(search.body.string.contains(">staging<"), "environments are found by name")
        }
    }

    // MARK: who sees it

    func testAnonymousGetsNothingOrdinaryAdministratorsSeeTheDashboardAndItsStream() async throws {
        try await InMemoryWorld.run { world in
            try await createUser(world.admin, "olga", role: .ordinary)
            let anonymous = try TestClient(world.app)
            let answer1 = try await anonymous.request(.GET, "/api/v1/dashboard/events")
            XCTAssertEqual(answer1.status, .unauthorized)
            let answer2 = try await anonymous.request(.GET, "/api/v1/dashboard")
            XCTAssertEqual(answer2.status, .unauthorized)
            let page = try await anonymous.request(.GET, "/dashboard/events")
            XCTAssertEqual(page.status, .seeOther)
            XCTAssertFalse(page.body.string.contains("event:"))

            let olga = try TestClient(world.app)
            try await olga.signIn("olga", "password-123")
            let answer3 = try await olga.request(.GET, "/")
            XCTAssertEqual(answer3.status, .ok)
            let summary = try olga.decode(API.DashboardSummary.self, try await olga.request(.GET, "/api/v1/dashboard"))
            XCTAssertEqual(summary.total, 0)
            // A following stream ends when the server shuts down; here the fleet ends it.
            let fleet = world.app.fleetStatus
            let ending = Task {
                while await fleet.subscriberCount == 0 { try await Task.sleep(for: .milliseconds(20)) }
                await fleet.finishAll()
            }
            let stream = try await olga.request(.GET, "/dashboard/events", headers: ["Accept": "text/event-stream"])
            try await ending.value
            XCTAssertEqual(stream.status, .ok)
            XCTAssertEqual(stream.headers.contentType?.subType, "event-stream")
            XCTAssertTrue(stream.body.string.hasPrefix("retry: 1000\n\n"), stream.body.string)
            XCTAssertTrue(stream.body.string.contains("event: summary\ndata: {"), stream.body.string)
        }
    }

    // MARK: notes and batch power

    func testNotesAreEditedBySystemAdministratorsOnly() async throws {
        try await InMemoryWorld.run { world in
            let vm = try await world.addReadyVM("web1", "10.77.5.11")
            try await createUser(world.admin, "olga", role: .ordinary)
            let olga = try TestClient(world.app)
            try await olga.signIn("olga", "password-123")
            let answer4 = try await olga.request(.PUT, "/api/v1/vms/\(vm.id)/notes", json: API.NotesInput(notes: "x"))
            XCTAssertEqual(answer4.status, .forbidden)
            let saved = try await world.admin.request(.PUT, "/api/v1/vms/\(vm.id)/notes", json: API.NotesInput(notes: "owner: team a"))
            XCTAssertEqual(saved.status, .ok, saved.body.string)
            let answer5 = try await world.vm(vm.id)
            XCTAssertEqual(answer5.notes, "owner: team a")
            let tooLong = try await world.admin.request(
                .PUT, "/api/v1/vms/\(vm.id)/notes", json: API.NotesInput(notes: String(repeating: "n", count: 2001)))
            XCTAssertEqual(tooLong.status, .badRequest)
            let answer6 = try await world.vm(vm.id)
            XCTAssertEqual(answer6.notes, "owner: team a")
            let form = try await world.admin.submit("/vms/\(vm.id)/notes", [("notes", "from the form")])
            XCTAssertEqual(form.status, .seeOther)
            let answer7 = try await world.vm(vm.id)
            XCTAssertEqual(answer7.notes, "from the form")
            let logged = try await LogEntry.query(on: world.app.db).filter(\.$action == "vm.notes").count()
            XCTAssertEqual(logged, 2)
        }
    }

    func testBatchPowerAcrossEnvironmentsIsOneJob() async throws {
        try await InMemoryWorld.run { world in
            let other = try world.admin.decode(
                API.EnvironmentBody.self,
                try await world.admin.request(.POST, "/api/v1/environments", json: API.EnvironmentInput(name: "prod", description: "")))
            let first = try await world.addReadyVM("web1", "10.77.5.11")
            let second = try await world.addReadyVM("web2", "10.77.5.12", in: other.id)
            let job = try await world.runJob(
                .POST, "/api/v1/vms/power", json: API.BatchPowerInput(vms: [first.id, second.id], action: "off"))
            XCTAssertEqual(job.status, "succeeded")
            XCTAssertEqual(job.steps?.count, 2)
            for id in [first.id, second.id] {
                let record = try await world.vm(id)
                let reference = try XCTUnwrap(record.vsphereReference)
                let answer8 = try await world.vsphere.machine(reference)
                XCTAssertEqual(answer8.powerState, .poweredOff)
                XCTAssertEqual(record.powerState, "poweredOff", "the record says where the action left the VM")
            }
            let unknown = try await world.admin.request(.POST, "/api/v1/vms/power", json: API.BatchPowerInput(vms: [UUID()], action: "off"))
            XCTAssertEqual(unknown.status, .notFound)
            let badAction = try await world.admin.request(
                .POST, "/api/v1/vms/power", json: API.BatchPowerInput(vms: [first.id], action: "up"))
            XCTAssertEqual(badAction.status, .badRequest)
        }
    }

    // MARK: inventory feed

    func testPowerChangeAndDriftReachTheDashboard() async throws {
        try await InMemoryWorld.run { world in
            let vm = try await world.addReadyVM("web1", "10.77.5.11")
            let reference = try XCTUnwrap(vm.vsphereReference)
            let fleet = world.app.fleetStatus
            try await waitFor("the VM is watched") { await fleet.entry(vm.id)?.powerState == "poweredOn" }
            await world.vsphere.change(reference) { $0.powerState = .poweredOff }
            try await waitFor("powered off shows") { await fleet.entry(vm.id)?.health == .poweredOff }
            let history = try await world.admin.request(.GET, "/api/v1/vms/\(vm.id)/reachability")
            XCTAssertTrue(history.body.string.contains("\"health\":\"poweredOff\""), history.body.string)

            await world.vsphere.change(reference) { $0.cpuCount = 4 }
            try await waitFor("drift is recorded") {
                (try? await VMDrift.query(on: world.app.db).filter(\.$field == "cpus").first())?.observed == "4"
            }
            let answer9 = try await world.vm(vm.id)
            XCTAssertEqual(answer9.cpus, 4)
            let page = try await world.admin.request(.GET, "/vms/\(vm.id)")
            XCTAssertTrue(page.body.string.contains("<td>cpus</td><td>1</td><td>4</td>"), page.body.string)
            XCTAssertTrue(page.body.string.contains("powered off"))
        }
    }

    private func waitFor(_ what: String, timeout: Duration = .seconds(15), _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTFail("timed out waiting until \(what)")
    }
}
