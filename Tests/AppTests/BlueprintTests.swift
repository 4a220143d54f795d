import XCTest

@testable import App

final class BlueprintTests: XCTestCase {
    private let text = """
        name: staging-4
        roles: { web: 2, redis: 1 }
        network:
          range: 10.77.20.254-10.77.21.10
          netmask: 255.255.255.0
          gateway: 10.77.20.1
          dns: [10.77.0.1, 10.77.0.2]
        """

    func testExpandsRolesIntoNamedVMsOnTheRange() throws {
        let planned = try Blueprint.parse(text.replacingOccurrences(of: "10.77.20.254-10.77.21.10", with: "10.77.20.1-10.77.20.9")).plan()
        XCTAssertEqual(planned.map(\.spec.hostName), ["staging-4-redis-01", "staging-4-web-01", "staging-4-web-02"])
        XCTAssertEqual(planned.map(\.spec.ip), ["10.77.20.2", "10.77.20.3", "10.77.20.4"], "the gateway is skipped")
        XCTAssertEqual(planned.first?.spec.dns2, "10.77.0.2")
        // 10.77.20.255 (broadcast) and 10.77.21.0 (a network address) are skipped; 10.77.21.1 is
        // outside the gateway's /24, which is refused rather than silently used.
        XCTAssertThrowsError(try Blueprint.parse(text).plan()) {
            XCTAssertTrue("\($0)".contains("outside the subnet"), "\($0)")
        }
        XCTAssertThrowsError(
            try Blueprint.parse(text.replacingOccurrences(of: "10.77.20.254-10.77.21.10", with: "10.77.20.253-10.77.20.254")).plan()
        ) {
            XCTAssertTrue("\($0)".contains("fewer addresses"), "\($0)")
        }
    }

    func testBadBlueprintsSayWhatIsWrong() {
        let cases: [(String, String)] = [
            ("name: x\nroles: {web: 1}\n", "network is required"),
            ("name: [oops\n", "not valid"),
            (text.replacingOccurrences(of: "web: 2", with: "web: 0"), "each count is 1 to 500"),
            (text.replacingOccurrences(of: "10.77.20.254-10.77.21.10", with: "10.77.21.10-10.77.20.254"), "FIRST-LAST"),
            (text.replacingOccurrences(of: "staging-4", with: "staging 4; rm -rf /"), "environment name"),
            (text + "\nnames: \"{env}-{role}\"\n", "must contain {n}"),
            (text.replacingOccurrences(of: "255.255.255.0", with: "255.0.255.0"), "netmask"),
        ]
        for (document, message) in cases {
            XCTAssertThrowsError(try Blueprint.parse(document).plan(), message) { error in
                XCTAssertTrue("\(error)".contains(message), "\(message): \(error)")
            }
        }
    }

    func testRoundTripsThroughYAML() throws {
        let blueprint = try Blueprint.parse(text)
        XCTAssertEqual(try Blueprint.parse(try blueprint.yaml()), blueprint)
    }
}
