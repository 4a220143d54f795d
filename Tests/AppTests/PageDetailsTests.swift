import XCTVapor

@testable import App

/// The page details people expect (issue 14 item 5): pagination above and below lists, a
/// favicon, a 404 page in the site's frame, the first field of the sign-in form focused.
final class PageDetailsTests: XCTestCase {
    func testListsHavePaginationAboveAndBelow() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            for path in ["/users", "/jobs", "/logs", "/environments", "/", "/upgrades", "/settings/notifications/deliveries"] {
                let html = try await admin.request(.GET, path).body.string
                let navigations = html.ranges(of: #"<nav class="pagination""#)
                XCTAssertEqual(navigations.count, 2, "\(path): pagination above and below the list")
                if let first = navigations.first, let table = html.range(of: "<table") {
                    XCTAssertLessThan(first.lowerBound, table.lowerBound, "\(path): the first pagination comes before the list")
                }
            }
        }
    }

    func testEveryPageNamesAFaviconTheServerServes() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            let signIn = try await client.request(.GET, "/login").body.string
            XCTAssertTrue(signIn.contains(#"<link rel="icon" href="/favicon.svg" type="image/svg+xml">"#), signIn)
            let icon = try await client.request(.GET, "/favicon.svg")
            XCTAssertEqual(icon.status, .ok)
            XCTAssertEqual(icon.headers.contentType?.subType, "svg+xml")
            XCTAssertTrue(icon.body.string.hasPrefix("<svg"))
        }
    }

    func testAnUnknownPageIsA404InTheSiteFrame() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            let answer = try await admin.request(.GET, "/no-such-page")
            XCTAssertEqual(answer.status, .notFound)
            let html = answer.body.string
            XCTAssertTrue(html.contains(#"<header class="top">"#) && html.contains("Sign out"), "the site's frame: \(html)")
            XCTAssertTrue(html.contains("not found"), html)
        }
    }

    func testTheSignInFormFocusesItsFirstField() async throws {
        try await TestApp.run { app in
            let html = try await TestClient(app).request(.GET, "/login").body.string
            let form = try XCTUnwrap(html.range(of: #"<form method="post" action="/login">"#))
            let firstField = try XCTUnwrap(
                html.range(of: #"<input (?!type="hidden")[^>]*>"#, options: .regularExpression, range: form.upperBound..<html.endIndex))
            XCTAssertTrue(html[firstField].contains("autofocus"), String(html[firstField]))
        }
    }
    /// Every form that deletes, revokes or is marked dangerous asks first: in the browser
    /// (`data-confirm` on the form, `data-confirm-click` on the button) or by being itself the
    /// confirmation page a link leads to (`*-delete.leaf`).
    func testEveryDestructiveFormAsksForConfirmation() throws {
        let views = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Resources/Views")
            .standardizedFileURL
        let files = try XCTUnwrap(FileManager.default.enumerator(at: views, includingPropertiesForKeys: nil)?.allObjects as? [URL])
        var checked = 0
        for file in files where file.pathExtension == "leaf" && !file.lastPathComponent.hasSuffix("-delete.leaf") {
            let text = try String(contentsOf: file, encoding: .utf8)
            for form in text.matches(of: /<form method="post"[^>]*>((?:(?!<\/form>)[\s\S])*)<\/form>/) {
                let whole = String(form.0)
                let opening = String(whole.prefix { $0 != ">" })
                let destructive =
                    opening.range(of: #"action="[^"]*(delete|revoke|remove|Delete)"#, options: .regularExpression) != nil
                    || whole.contains(#"class="danger""#) || whole.contains(#"value="off""#)
                guard destructive else { continue }
                checked += 1
                XCTAssertTrue(
                    opening.contains("data-confirm") || whole.contains("data-confirm-click"),
                    "\(file.lastPathComponent): \(opening)> deletes or stops without asking")
            }
        }
        XCTAssertGreaterThan(checked, 5, "the scan found the destructive forms")
    }
    /// Times on pages name their zone (FLOTILLA_TIMEZONE), the log's among them.
    func testTimesOnPagesNameTheirZone() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            let zone = app.flotilla.config.displayTimeZone.identifier
            for path in ["/logs", "/users"] {
                let html = try await admin.request(.GET, path).body.string
                XCTAssertNotNil(
                    html.range(of: #"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} "# + zone, options: .regularExpression), "\(path): \(html)")
                XCTAssertNil(
                    html.range(of: #"\d{2}:\d{2}:\d{2}</td>"#, options: .regularExpression), "\(path): a time without its zone")
            }
        }
    }
}
