import Foundation
import XCTest

@testable import App

/// Values rendered into a profile's files (issue 13, hostile values): in a Python file
/// (`settings.py`, `conf.py`) a value with quotes or backslashes stays inside its string
/// literal, checked by running the rendered file with the real `python3`; other files get the
/// value as written, and a line break is refused everywhere.
final class ServiceConfigurationValueEscapingTests: XCTestCase {
    private static let hostile = #"x" + __import__("os").system("touch /tmp/owned") + "\ it's"#

    private func profile(path: String, template: String) throws -> ServiceProfile {
        try ServiceProfile.parse(
            """
            name: escaping
            variables: { name: 'x" + __import__("os").system("touch /tmp/owned") + "\\ it''s' }
            secrets: [password]
            dependencies:
              redis: { checks: [{ kind: redis }] }
            targets:
              web:
                files:
                  - path: \(path)
                    owner: root
                    mode: "0640"
                    template: |
            \(template.split(separator: "\n").map { "            " + $0 }.joined(separator: "\n"))

            """)
    }

    private func render(_ profile: ServiceProfile, secret: String) throws -> String {
        let file = try XCTUnwrap(profile.targets["web"]?.files.first)
        return try ProfileRenderer(profile: profile, environment: "staging", dependencyAddresses: ["redis": "10.77.0.9"]).render(
            file, mode: .guest(secrets: ["password": secret]))
    }

    /// Runs `source` with python3 and answers what it printed.
    private func python(_ source: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", source]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertEqual(process.terminationStatus, 0, text)
        return text
    }

    func testValuesStayInsideTheirPythonStringInSettingsAndConfFiles() throws {
        XCTAssertEqual(try profile(path: "/opt/app/x.py", template: "A = 1").variables?["name"], Self.hostile)
        let secret = #"p"a's\s\"#
        for path in ["/opt/app/settings.py", "/opt/app/daemon/conf.py"] {
            let parsed = try profile(
                path: path,
                template: #"""
                    NAME = "{{variables.name}}"
                    SINGLE = '{{variables.name}}'
                    PASSWORD = "{{secrets.password}}"
                    TRIPLE = """{{secrets.password}}"""
                    HOST = "{{dependencies.redis.address}}"
                    PORT = {{dependencies.redis.port}}
                    """#)
            let text = try render(parsed, secret: secret)
            let printed = try python(text + "\nimport json\nprint(json.dumps([NAME, SINGLE, PASSWORD, TRIPLE, HOST, PORT]))")
            let values = try JSONSerialization.jsonObject(with: Data(printed.utf8)) as? [Any]
            XCTAssertEqual(values?[0] as? String, Self.hostile, "\(path): \(text)")
            XCTAssertEqual(values?[1] as? String, Self.hostile, "\(path): \(text)")
            XCTAssertEqual(values?[2] as? String, secret, "\(path): \(text)")
            XCTAssertEqual(values?[3] as? String, secret, "\(path): \(text)")
            XCTAssertEqual(values?[4] as? String, "10.77.0.9")
            XCTAssertEqual(values?[5] as? Int, 6379)
        }
    }

    func testOtherFilesGetValuesAsWrittenAndLineBreaksAreRefusedEverywhere() throws {
        let conf = try profile(path: "/etc/supervisor/conf.d/app.conf", template: "environment=NAME=\"{{variables.name}}\"")
        XCTAssertEqual(try render(conf, secret: "s"), "environment=NAME=\"\(Self.hostile)\"\n")
        let settings = try profile(path: "/opt/app/settings.py", template: #"PASSWORD = "{{secrets.password}}""#)
        XCTAssertThrowsError(try render(settings, secret: "a\"\nimport os")) {
            XCTAssertTrue("\($0)".contains("must be one line"), "\($0)")
        }
    }

    /// A secret written escaped into a Python file is masked in what the guest holds too.
    func testTheEscapedFormOfASecretIsMaskedInTheGuestsFile() {
        let secret = #"p"a's\s"#
        let guestFile = "PASSWORD = \"\(ProfileRenderer.pythonStringContent(secret))\"\n"
        XCTAssertEqual(
            ProfileRenderer.mask(guestFile, secrets: [secret]), "PASSWORD = \"\(ProfileRenderer.secretMask)\"\n")
        XCTAssertEqual(ProfileRenderer.mask("A = \"\(secret)\"", secrets: [secret]), "A = \"\(ProfileRenderer.secretMask)\"")
    }
}
