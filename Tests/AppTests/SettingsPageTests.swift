import XCTVapor

@testable import App

/// The Settings page answers at once; what it needs from vSphere (templates) is fetched after
/// the page is shown, like the environment expanders.
final class SettingsPageTests: XCTestCase {
    func testTheSettingsPageDoesNotWaitForVSphere() async throws {
        try await InMemoryWorld.run { world in
            await world.vsphere.setEndpointDelay(.seconds(3))
            let clock = ContinuousClock.now
            let page = try await world.admin.request(.GET, "/settings")
            XCTAssertLessThan(ContinuousClock.now - clock, .seconds(1), "the page is rendered without asking vSphere")
            XCTAssertEqual(page.status, .ok)
            XCTAssertTrue(
                page.body.string.contains(#"data-templates="/api/v1/connections/\#(world.connectionID)/templates""#),
                "the page says where its templates come from")
            await world.vsphere.setEndpointDelay(.zero)
            let templates = try world.admin.decode(
                [String].self,
                try await world.admin.request(.GET, "/api/v1/connections/\(world.connectionID)/templates"))
            XCTAssertEqual(templates, ["tpl-redis", "tpl-web"])
        }
    }
}
