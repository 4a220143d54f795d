import Fluent
import XCTVapor

@testable import App

/// Every registered route is checked against the permission table as an anonymous visitor,
/// an ordinary administrator and a system administrator, so a route added without a rule,
/// or with the wrong one, fails here.
final class PermissionTests: XCTestCase {
    func testEveryRouteFollowsThePermissionTable() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            try await createUser(admin, "olga", role: .ordinary)

            let routes = app.routes.all
            XCTAssertGreaterThan(routes.count, 30)
            for route in routes {
                let name = "\(route.method) \(route.path.string)"
                guard let action = route.requiredAction else {
                    XCTFail("\(name) has no permission rule")
                    continue
                }
                let path =
                    "/"
                    + route.path.map { component -> String in
                        switch component {
                        case .parameter("name"): "flotilla-logs-20000101-000000.txt"
                        case .parameter: UUID().uuidString
                        default: component.description
                        }
                    }.joined(separator: "/")

                for role in [nil, UserRole.ordinary, .system] {
                    let client = try TestClient(app)
                    switch role {
                    case .system: try await client.signIn("admin", TestApp.adminPassword)
                    case .ordinary: try await client.signIn("olga", "password-123")
                    case nil: break
                    }
                    let deniedBefore = try await LogEntry.query(on: app.db).filter(\.$result == "denied").count()
                    let response: TestingHTTPResponse
                    if route.method == .POST, !path.hasPrefix("/api/") {
                        response = try await client.submit(path)
                    } else {
                        response = try await client.request(route.method, path)
                    }
                    let who = role?.rawValue ?? "anonymous"
                    if action.isAllowed(for: role) {
                        XCTAssertNotEqual(
                            response.status, .forbidden, "\(who) may \(name) (\(action)): \(response.body.string.prefix(200))")
                        // The guard answers "sign in first" (API) or sends to the sign-in page (web).
                        XCTAssertFalse(response.body.string.contains("sign in first"), "\(who) may \(name) (\(action))")
                        XCTAssertFalse(response.headers.first(name: .location)?.hasPrefix("/login?next=") ?? false, "\(who) may \(name)")
                        XCTAssertLessThan(response.status.code, 500, "\(who) \(name): \(response.body.string.prefix(300))")
                    } else if role == nil {
                        if path.hasPrefix("/api/") {
                            XCTAssertEqual(response.status, .unauthorized, "anonymous \(name)")
                            XCTAssertEqual(response.errorCode, "unauthenticated", "anonymous \(name)")
                        } else {
                            XCTAssertEqual(response.status, .seeOther, "anonymous \(name) is sent to sign in")
                            XCTAssertTrue(response.headers.first(name: .location)?.hasPrefix("/login") ?? false, name)
                        }
                    } else {
                        XCTAssertEqual(response.status, .forbidden, "\(who) must not \(name) (\(action))")
                        if path.hasPrefix("/api/") { XCTAssertEqual(response.errorCode, "forbidden", name) }
                        let deniedAfter = try await LogEntry.query(on: app.db).filter(\.$result == "denied").count()
                        XCTAssertEqual(deniedAfter, deniedBefore + 1, "the denial of \(name) is logged")
                    }
                }
            }
        }
    }

    func testTheTableGivesOrdinaryAdministratorsExactlyUSR6() {
        let ordinary = Set(Action.allCases.filter { $0.isAllowed(for: .ordinary) })
        XCTAssertEqual(
            ordinary,
            [
                .signIn, .readAPIDocument, .checkHealth, .signOut, .viewDashboard, .viewEnvironments, .viewVMs, .powerVM, .changeVMNetwork,
                .viewJobs, .viewLogs, .backupLogs, .viewUsers, .changeOwnPassword, .manageOwnTokens, .viewVMMetrics,
                .scrapePlatformMetrics, .reportAgentStatus, .receiveUpgradeHook,
            ])
        XCTAssertTrue(Action.allCases.allSatisfy { $0.isAllowed(for: .system) })
        XCTAssertEqual(
            Set(Action.allCases.filter { $0.isAllowed(for: nil) }),
            [.signIn, .readAPIDocument, .checkHealth, .scrapePlatformMetrics, .reportAgentStatus, .receiveUpgradeHook])
    }

    func testARouteWithoutARuleIsRefused() async throws {
        try await TestApp.run(beforeBoot: { app in app.get("unguarded") { _ in "should never be served" } }) { app in
            let client = try TestClient(app)
            try await client.signIn("admin", TestApp.adminPassword)
            let response = try await client.request(.GET, "/unguarded")
            XCTAssertEqual(response.status, .forbidden)
            XCTAssertFalse(response.body.string.contains("should never be served"))
        }
    }
}
