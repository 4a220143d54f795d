import XCTVapor

@testable import App

/// Focus on the first field of a form (issue 14 item 5): on every page that is a form to fill
/// in, the first visible field after the page's heading takes the focus.
final class FormFocusTests: XCTestCase {
    func testFormPagesFocusTheirFirstField() async throws {
        try await InMemoryWorld.run { world in
            let roles = try world.admin.decode([API.RoleBody].self, try await world.admin.request(.GET, "/api/v1/roles"))
            let role = try XCTUnwrap(roles.first)
            for path in ["/users/new", "/environments/new", "/blueprints", "/settings/roles/\(role.id)/application"] {
                let answer = try await world.admin.request(.GET, path)
                XCTAssertEqual(answer.status, .ok, path)
                let html = answer.body.string
                let heading = try XCTUnwrap(html.range(of: "<h1"), path)
                let field = try XCTUnwrap(
                    html.range(
                        of: #"<(input|select|textarea) (?![^>]*type="(hidden|submit|button)")[^>]*>"#, options: .regularExpression,
                        range: heading.upperBound..<html.endIndex), path)
                XCTAssertTrue(html[field].contains("autofocus"), "\(path): \(html[field])")
            }
        }
    }
}
