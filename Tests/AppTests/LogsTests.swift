import Fluent
import XCTVapor

@testable import App

final class LogsTests: XCTestCase {
    private static let roles: [String?] = ["web", "mysql", "redis", "spider", nil]
    private static let ips = ["10.0.0.1", "10.0.0.2", "192.0.2.7", "2001:db8::5"]
    private static let start = Date(timeIntervalSince1970: 1_790_000_000)

    /// 1,000 entries spread over 10 days with every kind, several roles and operator IPs.
    private func seed(_ app: Application) async throws -> [LogEntry] {
        try await LogEntry.query(on: app.db).delete()
        var generator = SplitMix(seed: 42)
        var entries: [LogEntry] = []
        for index in 0..<1000 {
            let entry = LogEntry(
                kind: LogKind.allCases[Int(generator.next() % 4)],
                time: Self.start.addingTimeInterval(Double(generator.next() % 864_000)),
                vmName: "vm-\(index % 37)", vmRole: Self.roles[Int(generator.next() % 5)],
                operatorName: "op\(index % 3)", operatorIP: Self.ips[Int(generator.next() % 4)],
                action: "test.action", result: .success, details: "entry \(index) <b>&amp;</b> ' \"")
            entries.append(entry)
        }
        try await entries.create(on: app.db)
        return try await LogEntry.query(on: app.db).all()
    }

    private func allPages(_ client: TestClient, _ query: String) async throws -> (total: Int, ids: [Int]) {
        var ids: [Int] = []
        var page = 1
        var total = 0
        repeat {
            let response = try await client.request(.GET, "/api/v1/logs?\(query)&per=100&page=\(page)")
            XCTAssertEqual(response.status, .ok, "\(query): \(response.body.string.prefix(200))")
            let list = try client.decode(ListResponse<API.LogEntryBody>.self, response)
            total = list.total
            ids += list.items.map(\.id)
            page += 1
            if list.items.isEmpty { break }
        } while ids.count < total
        return (total, ids)
    }

    func testEverySearchFieldAloneAndCombinedReturnsTheIntersection() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            try await client.signIn("admin", TestApp.adminPassword)
            let entries = try await seed(app)
            XCTAssertEqual(entries.count, 1000)
            let from = Self.start.addingTimeInterval(2 * 86_400)
            let to = Self.start.addingTimeInterval(6 * 86_400 + 3600)
            func iso(_ date: Date) -> String { DisplayTime.iso(date).addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }

            typealias Filter = (query: String, matches: (LogEntry) -> Bool)
            let fields: [Filter] = [
                ("from=\(iso(from))", { $0.time >= from }),
                ("to=\(iso(to))", { $0.time <= to }),
                ("kind=login&kind=error", { ["login", "error"].contains($0.kind) }),
                ("role=web&role=redis", { ["web", "redis"].contains($0.vmRole ?? "") }),
                ("ip=10.0.0.2", { $0.operatorIP == "10.0.0.2" }),
            ]
            var combinations: [[Filter]] = fields.map { [$0] }
            for size in 2...fields.count {
                combinations += Self.subsets(of: fields, size: size)
            }
            XCTAssertEqual(combinations.count, 31)
            for combination in combinations {
                let query = combination.map(\.query).joined(separator: "&")
                let expected = entries.filter { entry in combination.allSatisfy { $0.matches(entry) } }
                    .sorted { ($0.time, $0.id ?? 0) > ($1.time, $1.id ?? 0) }
                    .compactMap(\.id)
                let result = try await allPages(client, query)
                XCTAssertEqual(result.total, expected.count, query)
                XCTAssertEqual(result.ids, expected, query)
            }
            let everything = try await allPages(client, "")
            XCTAssertEqual(everything.total, 1000)
        }
    }

    func testWebSearchKeepsTheQueryInTheURLAndEscapesDetails() async throws {
        try await TestApp.run(["FLOTILLA_TIMEZONE": "Asia/Shanghai"]) { app in
            let client = try TestClient(app)
            try await client.signIn("admin", TestApp.adminPassword)
            let entries = try await seed(app)
            // 2026-09-22T00:00 in Shanghai is 2026-09-21T16:00Z.
            let page = try await client.request(.GET, "/logs?from=2026-09-22T00:00&kind=upgrade&role=mysql&per=20")
            XCTAssertEqual(page.status, .ok)
            let html = page.body.string
            let boundary = try XCTUnwrap(DisplayTime.parseISO("2026-09-21T16:00:00Z"))
            let expected = entries.filter { $0.time >= boundary && $0.kind == "upgrade" && $0.vmRole == "mysql" }.count
            XCTAssertTrue(html.contains("\(expected) in all"), "count of \(expected) shown")
            XCTAssertTrue(html.contains("value=\"2026-09-22T00:00\""), "the picker shows the search in the display zone")
            XCTAssertTrue(html.contains("page=2&amp;per=20") || expected <= 20, "next link keeps the search")
            XCTAssertTrue(html.contains("kind=upgrade"))
            XCTAssertTrue(html.contains("&lt;b&gt;&amp;amp;&lt;/b&gt;"), "details are escaped")
            XCTAssertFalse(html.contains("<b>&amp;</b>"))

            for bad in [
                "from=yesterday", "from=2026-13-01T00:00", "to=2026-02-30T10:00", "kind=debug", "ip=10.0.0.300",
                "ip=%27%20OR%201%3D1--", "from=2026-09-22T00:00&to=2026-09-21T00:00",
            ] {
                let response = try await client.request(.GET, "/logs?\(bad)")
                XCTAssertEqual(response.status, .badRequest, bad)
                XCTAssertTrue(response.body.string.contains("class=\"error\""), bad)
                let api = try await client.request(.GET, "/api/v1/logs?\(bad)")
                XCTAssertEqual(api.status, .badRequest, bad)
                XCTAssertEqual(api.errorCode, "validation", bad)
            }
            for bad in ["page=0", "page=x", "per=7"] {
                let api = try await client.request(.GET, "/api/v1/logs?\(bad)")
                XCTAssertEqual(api.status, .badRequest, bad)
            }
        }
    }

    func testBackupHoldsEveryEntryAndCanBeDownloaded() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            try await client.signIn("admin", TestApp.adminPassword)
            let entries = try await seed(app)
            let response = try await client.request(.POST, "/api/v1/logs/backup")
            XCTAssertEqual(response.status, .created)
            let backup = try client.decode(API.BackupBody.self, response)
            XCTAssertEqual(backup.entries, 1000)
            let path = app.flotilla.config.backupDirectory + "/" + backup.name
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let lines = text.split(separator: "\n").filter { $0.hasPrefix("#") && !$0.hasPrefix("# ") }
            XCTAssertEqual(lines.count, 1000)
            XCTAssertEqual(
                Set(lines.map { String($0.split(separator: "\t")[0].dropFirst()) }), Set(entries.compactMap(\.id).map(String.init)))

            let filtered = try client.decode(API.BackupBody.self, try await client.request(.POST, "/api/v1/logs/backup?kind=login"))
            XCTAssertEqual(filtered.entries, entries.filter { $0.kind == "login" }.count)

            let listing = try await client.request(.GET, "/logs/backups")
            XCTAssertTrue(listing.body.string.contains(backup.name))
            let download = try await client.request(.GET, "/logs/backups/\(backup.name)")
            XCTAssertEqual(download.status, .ok)
            XCTAssertEqual(download.body.readableBytes, try Data(contentsOf: URL(fileURLWithPath: path)).count)
            for hostile in ["..%2F..%2Fetc%2Fpasswd", "flotilla.sqlite", "flotilla-logs-1.txt"] {
                let response = try await client.request(.GET, "/logs/backups/\(hostile)")
                XCTAssertTrue([.notFound, .forbidden].contains(response.status), "\(hostile): \(response.status)")
                XCTAssertFalse(response.body.string.contains("root:"), hostile)
            }
            let web = try await client.submit("/logs/backup", [("kind", "error"), ("kind", "upgrade")])
            XCTAssertEqual(web.status, .seeOther)
            let backupEntry = try await LogEntry.query(on: app.db).filter(\.$action == "logs.backup").sort(\.$id, .descending).first()
            XCTAssertTrue(backupEntry?.details.contains("kind=error kind=upgrade") ?? false)
        }
    }

    /// Review finding 12: backups are bounded, and ordinary administrators see no server path.
    func testOnlyTheNewestBackupsAreKeptAndPathsStayOnTheServer() async throws {
        try await TestApp.run(["FLOTILLA_BACKUP_KEEP": "2"]) { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            try await createUser(admin, "op", role: .ordinary)
            let op = try TestClient(app)
            try await op.signIn("op", "password-123")
            var names: [String] = []
            for _ in 0..<4 {
                let response = try await op.request(.POST, "/api/v1/logs/backup")
                XCTAssertEqual(response.status, .created)
                XCTAssertFalse(response.body.string.contains(app.flotilla.config.dataDirectory))
                names.append(try op.decode(API.BackupBody.self, response).name)
            }
            let kept = try FileManager.default.contentsOfDirectory(atPath: app.flotilla.config.backupDirectory).sorted()
            XCTAssertEqual(kept, names.suffix(2).sorted(), "the newest two of \(names)")

            let directory = (app.flotilla.config.backupDirectory as NSString).standardizingPath
            let ordinaryPage = try await op.request(.GET, "/logs/backups")
            XCTAssertEqual(ordinaryPage.status, .ok)
            XCTAssertFalse(ordinaryPage.body.string.contains(directory))
            XCTAssertFalse(ordinaryPage.body.string.contains(app.flotilla.config.dataDirectory))
            let systemPage = try await admin.request(.GET, "/logs/backups")
            XCTAssertTrue(systemPage.body.string.contains(app.flotilla.config.backupDirectory), "system administrators see where")
        }
    }

    func testDeleteAllLeavesOneEntrySayingWhoRemovedHowMany() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            try await client.signIn("admin", TestApp.adminPassword)
            _ = try await seed(app)
            let page = try await client.request(.GET, "/logs/delete")
            XCTAssertTrue(page.body.string.contains("1000"))
            let response = try await client.submit("/logs/delete")
            XCTAssertEqual(response.status, .seeOther)
            let remaining = try await LogEntry.query(on: app.db).all()
            XCTAssertEqual(remaining.count, 1)
            XCTAssertEqual(remaining.first?.details, "admin deleted all 1000 log entries")
            XCTAssertEqual(remaining.first?.operatorName, "admin")

            let api = try client.decode(API.DeletedLogs.self, try await client.request(.DELETE, "/api/v1/logs"))
            XCTAssertEqual(api.deleted, 1)
        }
    }

    private static func subsets<T>(of items: [T], size: Int) -> [[T]] {
        guard size > 0 else { return [[]] }
        guard items.count >= size else { return [] }
        let head = items[0]
        let tail = Array(items.dropFirst())
        return subsets(of: tail, size: size - 1).map { [head] + $0 } + subsets(of: tail, size: size)
    }
}

/// A small deterministic generator so the seeded log is the same on every run.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
