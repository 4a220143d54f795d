import XCTVapor

@testable import App

/// Every API operation has its page (issue 14 item 4): each operation of the OpenAPI document
/// maps to the page form or link that does the same, or is listed as API-only with the reason.
/// A new operation without either fails here.
final class APIPagesCoverageTests: XCTestCase {
    /// Operation → the page route (method and path) that does the same thing.
    private static let pages: [String: (HTTPMethod, SiteURL)] = [
        "POST /api/v1/login": (.POST, .signIn),
        "POST /api/v1/logout": (.POST, .signOut),
        "GET /api/v1/users": (.GET, .users),
        "POST /api/v1/users": (.POST, .users),
        "POST /api/v1/users/me/password": (.POST, .accountPassword),
        "GET /api/v1/users/{id}": (.GET, .userEdit(id: nil)),
        "PATCH /api/v1/users/{id}": (.POST, .user(id: nil)),
        "DELETE /api/v1/users/{id}": (.POST, .userDelete(id: nil)),
        "GET /api/v1/users/{id}/tokens": (.GET, .userEdit(id: nil)),
        "DELETE /api/v1/users/{id}/tokens/{tokenID}": (.POST, .userTokenRevoke(user: nil, token: nil)),
        "GET /api/v1/tokens": (.GET, .account),
        "POST /api/v1/tokens": (.POST, .accountTokens),
        "DELETE /api/v1/tokens/{id}": (.POST, .accountTokenRevoke(id: nil)),
        "GET /api/v1/logs": (.GET, .logs),
        "DELETE /api/v1/logs": (.POST, .logsDelete),
        "POST /api/v1/logs/backup": (.POST, .logsBackup),
        "GET /api/v1/connections": (.GET, .settings),
        "POST /api/v1/connections": (.POST, .settingsConnections),
        "POST /api/v1/connections/test": (.POST, .settingsConnectionTest),
        "GET /api/v1/connections/{id}/templates": (.GET, .settings),
        "DELETE /api/v1/connections/{id}": (.POST, .settingsConnectionDelete(id: nil)),
        "GET /api/v1/roles": (.GET, .settings),
        "POST /api/v1/roles": (.POST, .settingsRoles),
        "PATCH /api/v1/roles/{id}": (.POST, .settingsRoles),
        "GET /api/v1/environments": (.GET, .environments),
        "POST /api/v1/environments": (.POST, .environments),
        "POST /api/v1/environments/power": (.POST, .environmentsBatch),
        "POST /api/v1/environments/delete": (.POST, .environmentsBatchDelete),
        "GET /api/v1/environments/{id}": (.GET, .environment(id: nil)),
        "GET /api/v1/environments/{id}/live": (.GET, .environment(id: nil)),
        "PATCH /api/v1/environments/{id}": (.POST, .environment(id: nil)),
        "DELETE /api/v1/environments/{id}": (.POST, .environmentsBatchDelete),
        "POST /api/v1/environments/{id}/vms": (.POST, .environmentVMs(id: nil)),
        "POST /api/v1/blueprints/check": (.POST, .blueprintsCheck),
        "POST /api/v1/blueprints/deploy": (.POST, .blueprints),
        "GET /api/v1/environments/{id}/blueprint": (.GET, .blueprints),
        "POST /api/v1/environments/{id}/clone": (.POST, .environmentClone(id: nil)),
        "POST /api/v1/environments/{id}/adopt": (.POST, .adopt),
        "GET /api/v1/vms": (.GET, .dashboard),
        "POST /api/v1/vms/power": (.POST, .vmsPower),
        "GET /api/v1/vms/{id}": (.GET, .vm(id: nil)),
        "DELETE /api/v1/vms/{id}": (.POST, .vmDelete(id: nil)),
        "POST /api/v1/vms/{id}/power": (.POST, .vmPower(id: nil)),
        "POST /api/v1/vms/{id}/password": (.POST, .vmPassword(id: nil)),
        "POST /api/v1/vms/{id}/network": (.POST, .vmNetwork(id: nil)),
        "PUT /api/v1/vms/{id}/notes": (.POST, .vmNotes(id: nil)),
        "GET /api/v1/vms/{id}/metrics": (.GET, .vm(id: nil)),
        "GET /api/v1/vms/{id}/services": (.GET, .vm(id: nil)),
        "POST /api/v1/vms/{id}/services/{service}/{action}": (.GET, .vm(id: nil)),
        "GET /api/v1/vms/{id}/reachability": (.GET, .vm(id: nil)),
        "GET /api/v1/vms/{id}/drift": (.GET, .vm(id: nil)),
        "GET /api/v1/applications": (.GET, .upgrades),
        "PUT /api/v1/roles/{id}/application": (.POST, .roleApplication(id: nil)),
        "DELETE /api/v1/roles/{id}/application": (.POST, .roleApplication(id: nil)),
        "GET /api/v1/upgrades/vms": (.GET, .upgrades),
        "POST /api/v1/upgrades": (.POST, .upgradesStart),
        "POST /api/v1/upgrades/rollback": (.POST, .upgradesRollback),
        "GET /api/v1/upgrade-hooks": (.GET, .upgradeHooks),
        "POST /api/v1/upgrade-hooks": (.POST, .upgradeHooks),
        "DELETE /api/v1/upgrade-hooks/{id}": (.POST, .upgradeHookDelete(id: nil)),
        "GET /api/v1/dashboard": (.GET, .dashboard),
        "GET /api/v1/dashboard/events": (.GET, .dashboardEvents),
        "GET /api/v1/jobs": (.GET, .jobs),
        "GET /api/v1/jobs/{id}": (.GET, .job(id: nil)),
        "POST /api/v1/jobs/{id}/cancel": (.POST, .jobCancel(id: nil)),
        "GET /api/v1/ssh-keys": (.GET, .settingsSSHKeys),
        "POST /api/v1/ssh-keys/rotate": (.POST, .settingsSSHKeysRotate),
        "GET /api/v1/instances": (.GET, .settingsInstances),
        "GET /api/v1/notifications/settings": (.GET, .notifications),
        "PATCH /api/v1/notifications/settings": (.POST, .notificationsSettings),
        "POST /api/v1/notifications/test-mail": (.POST, .notificationsTestMail),
        "GET /api/v1/notifications/deliveries": (.GET, .notificationsDeliveries),
        "GET /api/v1/notifications/deliveries/{id}": (.GET, .notificationsDeliveries),
        "GET /api/v1/webhooks": (.GET, .notifications),
        "POST /api/v1/webhooks": (.POST, .notificationsWebhooks),
        "DELETE /api/v1/webhooks/{id}": (.POST, .notificationsWebhookDelete(id: nil)),
        "POST /api/v1/webhooks/{id}/test": (.POST, .notificationsWebhookTest(id: nil)),
        "GET /api/v1/service-profiles": (.GET, .serviceConfiguration),
        "POST /api/v1/service-profiles": (.POST, .serviceProfiles),
        "GET /api/v1/service-profiles/{id}": (.GET, .serviceProfile(id: nil)),
        "PATCH /api/v1/service-profiles/{id}": (.POST, .serviceProfile(id: nil)),
        "DELETE /api/v1/service-profiles/{id}": (.POST, .serviceProfile(id: nil)),
        "GET /api/v1/service-profiles/{id}/versions": (.GET, .serviceProfile(id: nil)),
        "GET /api/v1/service-profiles/{id}/versions/{version}": (.GET, .serviceProfile(id: nil)),
        "GET /api/v1/service-profiles/{id}/options": (.GET, .configurationWizard),
        "POST /api/v1/configuration-runs": (.POST, .configurationRuns),
        "GET /api/v1/configuration-runs/{id}": (.GET, .configurationRun(id: nil)),
        "POST /api/v1/configuration-runs/{id}/check": (.POST, .configurationRun(id: nil)),
        "POST /api/v1/configuration-runs/{id}/preview": (.POST, .configurationRun(id: nil)),
        "POST /api/v1/configuration-runs/{id}/configure": (.POST, .configurationRun(id: nil)),
        "POST /api/v1/configuration-drift": (.POST, .configurationDrift),
    ]

    /// Operations that are API by design, with the reason.
    private static let apiOnly: [String: String] = [
        "DELETE /api/v1/tokens": "revokes the calling token itself: only a token holder (a script) has one to revoke",
        "POST /api/v1/vms/{id}/agent": "called by the monitor agent's installer on the guest, not by a person",
        "POST /api/v1/agent/heartbeat": "the monitor agent's heartbeat",
        "POST /api/v1/agent/events": "the monitor agent's events",
        "POST /api/v1/hooks/{format}/{id}": "called by a repository's webhook",
        "GET /api/v1/health": "for load balancers and monitoring",
        "GET /api/v1/openapi.json": "the API's own description",
    ]

    func testEveryOperationHasAPageOrAReason() async throws {
        try await TestApp.run { app in
            let response = try await TestClient(app).request(.GET, "/api/v1/openapi.json")
            let document = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
            let paths = try XCTUnwrap(document["paths"] as? [String: [String: Any]])
            let operations = Set(paths.flatMap { path, methods in methods.keys.map { "\($0.uppercased()) \(path)" } })
            let pageRoutes = Set(
                app.routes.all.filter { $0.path.first != "api" }.map { route in
                    "\(route.method.rawValue) /" + route.path.map(\.description).joined(separator: "/")
                })
            for operation in operations.sorted() {
                if let reason = Self.apiOnly[operation] {
                    XCTAssertFalse(reason.isEmpty, operation)
                    continue
                }
                guard let (method, page) = Self.pages[operation] else {
                    XCTFail("\(operation) has no page: add its page, or list it as API-only with a reason")
                    continue
                }
                let route = "\(method.rawValue) /" + page.pathComponents.map(\.description).joined(separator: "/")
                XCTAssertTrue(pageRoutes.contains(route), "\(operation): its page \(route) is not a registered route")
            }
            let listed = Set(Self.pages.keys).union(Self.apiOnly.keys)
            XCTAssertEqual(listed.subtracting(operations), [], "entries for operations the document no longer has")
        }
    }
}
