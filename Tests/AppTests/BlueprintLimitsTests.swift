import XCTest

@testable import App

/// A hostile blueprint is a 400, never a crash or a hang (security review, finding 8).
final class BlueprintLimitsTests: XCTestCase {
    private let network = "network: {range: 10.0.0.10-10.0.0.11, netmask: \"24\", gateway: 10.0.0.1}\n"

    /// Without the fix the sum of the counts traps on overflow and takes the server down.
    func testHugeRoleCountsAreRefusedNotOverflowed() {
        let text = "name: ovf\nroles: {a: 9223372036854775807, b: 1}\n" + network
        XCTAssertThrowsError(try Blueprint.parse(text).plan()) { error in
            XCTAssertTrue("\(error)".contains("each count is 1 to 500"), "\(error)")
        }
    }

    /// Each level multiplies the decoded pairs by ten; refused before any expansion.
    func testAliasAndMergeKeyExpansionIsRefused() {
        func bomb(levels: Int) -> String {
            var lines = ["a0: &a0 {k0: 1, k1: 1, k2: 1, k3: 1, k4: 1, k5: 1, k6: 1, k7: 1, k8: 1, k9: 1}"]
            for level in 1...levels {
                lines.append("a\(level): &a\(level) {<<: [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]}")
            }
            return lines.joined(separator: "\n") + "\n<<: *a\(levels)\nname: bomb\nroles: {web: 1}\n" + network
        }
        let started = ContinuousClock.now
        XCTAssertThrowsError(try Blueprint.parse(bomb(levels: 4))) { error in
            XCTAssertTrue("\(error)".contains("anchors and aliases are not accepted"), "\(error)")
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(1))
    }

    func testAnchorsAliasesAndMergeKeysAreRefusedEachWithItsLine() {
        let cases: [(String, String)] = [
            ("name: x\nroles: &r {web: 1}\n" + network, "anchor (&) on line 2"),
            ("name: x\nroles: {web: 1}\nnames: *n\n" + network, "on line 3"),
            ("name: x\nroles: {<<: {web: 1}}\n" + network, "merge key (<<) on line 2"),
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try Blueprint.parse(text), message) { error in
                XCTAssertTrue("\(error)".contains(message), "\(message): \(error)")
            }
        }
        // `<<` as a value is just text; `&` and `*` inside text are too.
        XCTAssertNoThrow(try Blueprint.parse("name: x\ndescription: R&D *team* <<\nroles: {web: 1}\n" + network))
    }

    /// 30,000 `[` would recurse 30,000 times in Yams' composer.
    func testDeepNestingIsRefusedBeforeYamsRecurses() {
        let text = "name: deep\nroles: {web: 1}\n" + network + "description: " + String(repeating: "[", count: 30_000)
        XCTAssertThrowsError(try Blueprint.parse(text)) { error in
            XCTAssertTrue("\(error)".contains("nests deeper than"), "\(error)")
        }
        let blockNesting = (0..<40).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n")
        XCTAssertThrowsError(try Blueprint.parse(blockNesting)) { error in
            XCTAssertTrue("\(error)".contains("nests deeper than"), "\(error)")
        }
    }

    func testManyValuesAreRefused() {
        let text =
            "name: wide\nroles: {web: 1}\n" + network + "dns: [" + Array(repeating: "1", count: 20_000).joined(separator: ",") + "]\n"
        XCTAssertThrowsError(try Blueprint.parse(text)) { error in
            XCTAssertTrue("\(error)".contains("more than"), "\(error)")
        }
    }

    func testHostileBlueprintThroughTheAPIIsA400AndTheServerStaysUp() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            try await client.signIn("admin", TestApp.adminPassword)
            for text in [
                "name: ovf\nroles: {a: 9223372036854775807, b: 1}\n" + network,
                "name: deep\n" + network + "roles: " + String(repeating: "[", count: 30_000),
            ] {
                let response = try await client.request(.POST, "/api/v1/blueprints/check", json: ["blueprint": text])
                XCTAssertEqual(response.status, .badRequest, response.body.string)
                XCTAssertEqual(response.errorCode, "validation")
            }
            let page = try await client.request(.GET, "/login")
            XCTAssertNotEqual(page.status, .internalServerError)
        }
    }
}
