import XCTVapor

@testable import App

/// The adoption page (SPEC BEY-4, issue 14 item 4): it lists what vSphere has and Flotilla does
/// not manage, and adopts a selection the way the API does.
final class AdoptionPageTests: XCTestCase {
    func testThePageListsUnmanagedVMsAndAdoptsASelection() async throws {
        try await InMemoryWorld.run { world in
            for (name, address) in [("old-app-1", "10.77.7.21"), ("old-app-2", "10.77.7.22")] {
                await world.vsphere.addMachine(name, guestIPAddress: address)
                await world.shell.add(.init(hostName: name, password: InMemoryWorld.guestPassword), at: address)
            }
            let managed = try await world.addReadyVM("web-1", "10.77.5.30")

            let page = try await world.admin.request(.GET, "/adopt?environment=\(world.environmentID)")
            XCTAssertEqual(page.status, .ok)
            let html = page.body.string
            XCTAssertTrue(html.contains(#"value="old-app-1""#) && html.contains(#"value="old-app-2""#), html)
            XCTAssertFalse(html.contains(#"value="tpl-web""#), "templates are not offered")
            XCTAssertFalse(html.contains(#"value="\#(managed.hostName)""#), "VMs Flotilla manages are not offered")
            XCTAssertTrue(html.contains(#"<option value="\#(world.environmentID)" selected>"#), "the environment is preselected")
            let environmentPage = try await world.admin.request(.GET, "/environments/\(world.environmentID)")
            XCTAssertTrue(environmentPage.body.string.contains(#"href="/adopt?environment=\#(world.environmentID)""#))

            let fields: [(String, String)] = [
                ("connection", world.connectionID.uuidString), ("environment", world.environmentID.uuidString), ("role", "web"),
            ]
            let nothingChosen = try await world.admin.submit("/adopt", fields + [("password", InMemoryWorld.guestPassword)])
            XCTAssertEqual(nothingChosen.status, .badRequest)
            XCTAssertTrue(nothingChosen.body.string.contains("select at least one VM"), nothingChosen.body.string)
            let wrongPassword = try await world.admin.submit(
                "/adopt", fields + [("name", "old-app-1"), ("password", "Wrong-pass-1")])
            XCTAssertEqual(wrongPassword.status, .badRequest)
            XCTAssertTrue(wrongPassword.body.string.contains("old-app-1 refused the password"), wrongPassword.body.string)
            XCTAssertTrue(wrongPassword.body.string.contains(#"value="old-app-1" checked"#), "the selection is kept")

            let adopted = try await world.admin.submit(
                "/adopt", fields + [("name", "old-app-1"), ("password", InMemoryWorld.guestPassword)])
            XCTAssertEqual(adopted.status, .seeOther, adopted.body.string)
            XCTAssertEqual(adopted.headers.first(name: .location), "/environments/\(world.environmentID)")
            let environment = try world.admin.decode(
                API.EnvironmentBody.self, try await world.admin.request(.GET, "/api/v1/environments/\(world.environmentID)"))
            XCTAssertEqual(Set(environment.vms.map(\.hostName)), ["web-1", "old-app-1"])
            let after = try await world.admin.request(.GET, "/adopt").body.string
            XCTAssertFalse(after.contains(#"value="old-app-1""#), "an adopted VM is no longer offered")
            XCTAssertTrue(after.contains(#"value="old-app-2""#))
        }
    }

    func testOperatorsMayNotAdopt() async throws {
        try await InMemoryWorld.run { world in
            try await createUser(world.admin, "watcher", role: .ordinary)
            let watcher = try TestClient(world.app)
            try await watcher.signIn("watcher", "password-123")
            let page = try await watcher.request(.GET, "/adopt")
            XCTAssertEqual(page.status, .forbidden)
            await world.vsphere.addMachine("old-app-1", guestIPAddress: "10.77.7.21")
            let answer = try await watcher.submit(
                "/adopt",
                [
                    ("connection", world.connectionID.uuidString), ("environment", world.environmentID.uuidString),
                    ("role", "web"), ("name", "old-app-1"), ("password", InMemoryWorld.guestPassword),
                ])
            XCTAssertEqual(answer.status, .forbidden)
        }
    }
}
