import XCTest

@testable import App

/// Service configuration profiles (issue 13 §1): parsing, the rules that keep a profile's paths,
/// owners, commands and values harmless on a guest, and rendering with masking.
final class ServiceProfileTests: XCTestCase {
    /// A small valid profile; `file` replaces the single file entry of the `web` role.
    private func profile(
        file: String = """
              - path: /opt/app/settings.py
                owner: app:app
                mode: "0640"
                validate: [python3, -m, py_compile, "{file}"]
                template: |
                  HOST = "{{dependencies.mysql.address}}"
                  PORT = {{dependencies.mysql.port}}
                  ENV = "{{environment}}"
                  NAME = "{{variables.db_name}}"
                  PASSWORD = "{{secrets.db_password}}"
        """,
        variables: String = "{ db_name: app }",
        restart: String = "[app-web]"
    ) -> String {
        """
        name: sample
        variables: \(variables)
        secrets: [db_password]
        dependencies:
          mysql: { checks: [{ kind: mysql }] }
        targets:
          web:
            files:
        \(file)
            restart: \(restart)

        """
    }

    private func fileEntry(
        path: String = "/opt/app/a.conf", owner: String = "app", mode: String = "\"0644\"", validate: String? = nil
    ) -> String {
        var text = "          - path: \(path)\n            owner: \(owner)\n            mode: \(mode)\n            template: x\n"
        if let validate { text += "            validate: \(validate)\n" }
        return text
    }

    private func assertRefused(_ text: String, mentioning expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try ServiceProfile.parse(text), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(expected), "expected '\(expected)' in: \(error)", file: file, line: line)
        }
    }

    func testAValidProfileParsesWithDefaultPorts() throws {
        let parsed = try ServiceProfile.parse(profile())
        XCTAssertEqual(parsed.name, "sample")
        XCTAssertEqual(parsed.dependencies["mysql"]?.checks.first?.effectivePort, 3306)
        XCTAssertEqual(parsed.targets["web"]?.files.first?.validate, ["python3", "-m", "py_compile", "{file}"])
        XCTAssertEqual(parsed.targets["web"]?.restart, ["app-web"])
    }

    func testHostilePathsAreRefusedNamingTheField() {
        let field = "targets.web.files[0].path"
        for path in [
            "../../etc/shadow", "/etc/shadow", "/opt/app/../../etc/shadow", "/opt/app/./a.conf", "/opt//app/a.conf",
            "/opt/app/", "/opt/", "/opt/.ssh/authorized_keys", "/opt/app/a.conf\\..", "'/opt/app/a b.conf'",
            "/opt/app/$(id).conf", "/optx/a.conf", "/etc/supervisor/conf.d/../../shadow", "~/a.conf",
        ] {
            assertRefused(profile(file: fileEntry(path: path)), mentioning: field)
        }
        assertRefused(profile(file: fileEntry(path: "/etc/shadow")), mentioning: "outside the folders a profile may write to")
        XCTAssertNoThrow(try ServiceProfile.parse(profile(file: fileEntry(path: "/etc/supervisor/conf.d/app.conf"))))
    }

    func testTheSamePathTwiceInARoleIsRefused() {
        assertRefused(profile(file: fileEntry() + fileEntry()), mentioning: "is listed twice")
    }

    func testOwnersAndModesMustBeWellFormed() {
        for owner in ["root;id", "App", "\"app:\"", "\":app\"", "\"a:b:c\"", "\"app app\"", "-app"] {
            assertRefused(profile(file: fileEntry(owner: owner)), mentioning: "targets.web.files[0].owner")
        }
        for mode in ["\"4755\"", "\"0648\"", "\"644x\"", "\"07777\"", "rw-r--r--", "\"2644\""] {
            assertRefused(profile(file: fileEntry(mode: mode)), mentioning: "targets.web.files[0].mode")
        }
        assertRefused(profile(file: fileEntry(mode: "\"0666\"")), mentioning: "every user on the guest rewrite")
        XCTAssertNoThrow(try ServiceProfile.parse(profile(file: fileEntry(owner: "root:root", mode: "\"600\""))))
    }

    func testServiceNamesWithShellCharactersAreRefused() {
        for name in ["\"web; reboot\"", "\"$(id)\"", "\"a b\"", "\"-x\"", "\"web|cat\""] {
            assertRefused(profile(restart: "[\(name)]"), mentioning: "targets.web.restart")
        }
        XCTAssertNoThrow(try ServiceProfile.parse(profile(restart: "[app-web, \"getty@tty1.service\"]")))
    }

    func testValidateCommandsAreWordListsNeverShellLines() {
        let field = "targets.web.files[0].validate"
        assertRefused(
            profile(file: fileEntry(validate: "\"python3 -m py_compile {file}; rm -rf /\"")), mentioning: "validate has the wrong type")
        assertRefused(profile(file: fileEntry(validate: "[\"sh;id\", \"{file}\"]")), mentioning: "\(field)[0]")
        assertRefused(profile(file: fileEntry(validate: "[\"../bin/check\", \"{file}\"]")), mentioning: "\(field)[0]")
        assertRefused(profile(file: fileEntry(validate: "[python3, \"a\\nb\", \"{file}\"]")), mentioning: "\(field)[1]")
        assertRefused(profile(file: fileEntry(validate: "[true]")), mentioning: "one argument must be {file}")
        assertRefused(profile(file: fileEntry(validate: "[]")), mentioning: field)
        XCTAssertNoThrow(
            try ServiceProfile.parse(profile(file: fileEntry(validate: "[/usr/bin/python3, -c, \"import sys; sys.exit(0)\", \"{file}\"]"))))
    }

    func testVariablesWithLineBreaksAreRefused() {
        assertRefused(profile(variables: "{ db_name: \"app\\nDEBUG = True\" }"), mentioning: "variables.db_name must be one line")
        assertRefused(profile(variables: "{ db_name: \"app\\u2028x\" }"), mentioning: "variables.db_name")
        assertRefused(profile(variables: "{ \"db name\": app }"), mentioning: "variables:")
    }

    func testStructuralMistakesAreNamed() {
        assertRefused("name: x\ndependencies: {}\ntargets: {}\n", mentioning: "targets: name at least one target role")
        assertRefused(profile().replacingOccurrences(of: "kind: mysql", with: "kind: oracle"), mentioning: "has the wrong type or value")
        assertRefused(
            profile().replacingOccurrences(of: "{ kind: mysql }", with: "{ kind: tcp }"), mentioning: "port is required for a tcp check")
        assertRefused(
            profile().replacingOccurrences(of: "{ kind: mysql }", with: "{ kind: redis, port: 70000 }"), mentioning: "must be 1 to 65535")
        assertRefused(profile().replacingOccurrences(of: "  web:", with: "  mysql:"), mentioning: "either a dependency or a target")
        assertRefused("name: x\nvariables: &v {a: b}\n", mentioning: "anchors and aliases are not accepted")
    }

    func testTemplatesNamingUndeclaredValuesAreRefusedWhenSaved() {
        let typo = profile().replacingOccurrences(of: "dependencies.mysql.address", with: "dependencies.mysq.address")
        assertRefused(typo, mentioning: "uses {{dependencies.mysq}}, which is not defined")
        assertRefused(
            profile().replacingOccurrences(of: "secrets.db_password", with: "secrets.root_password"),
            mentioning: "{{secrets.root_password}}")
        assertRefused(
            profile().replacingOccurrences(of: "{{environment}}", with: "{{#broken}}"), mentioning: "is not a valid Mustache template")
    }

    func testRenderingPutsAddressesEnvironmentVariablesAndSecretsVerbatim() throws {
        let parsed = try ServiceProfile.parse(profile())
        let file = try XCTUnwrap(parsed.targets["web"]?.files.first)
        let renderer = ProfileRenderer(profile: parsed, environment: "staging-4", dependencyAddresses: ["mysql": "10.77.20.11"])
        let text = try renderer.render(file, mode: .guest(secrets: ["db_password": "s3<&cr"]))
        XCTAssertEqual(
            text,
            """
            HOST = "10.77.20.11"
            PORT = 3306
            ENV = "staging-4"
            NAME = "app"
            PASSWORD = "s3<&cr"

            """)
    }

    func testPreviewMasksEverySecret() throws {
        let parsed = try ServiceProfile.parse(profile())
        let file = try XCTUnwrap(parsed.targets["web"]?.files.first)
        let renderer = ProfileRenderer(profile: parsed, environment: "staging-4", dependencyAddresses: ["mysql": "10.77.20.11"])
        let preview = try renderer.render(file, mode: .preview)
        XCTAssertTrue(preview.contains("PASSWORD = \"••••••\""), preview)
        XCTAssertTrue(preview.contains("HOST = \"10.77.20.11\""), preview)
    }

    func testRenderingRefusesMissingChoicesAndHostileValues() throws {
        let parsed = try ServiceProfile.parse(profile())
        let file = try XCTUnwrap(parsed.targets["web"]?.files.first)
        func render(
            addresses: [String: String], environment: String = "staging", secrets: [String: String] = ["db_password": "x"]
        ) throws
            -> String
        {
            try ProfileRenderer(profile: parsed, environment: environment, dependencyAddresses: addresses).render(
                file, mode: .guest(secrets: secrets))
        }
        XCTAssertThrowsError(try render(addresses: [:])) {
            XCTAssertTrue("\($0)".contains("choose a VM for the dependency role 'mysql'"), "\($0)")
        }
        XCTAssertThrowsError(try render(addresses: ["mysql": "db.example.com\nDEBUG=1"])) {
            XCTAssertTrue("\($0)".contains("is not an IP address"), "\($0)")
        }
        XCTAssertThrowsError(try render(addresses: ["mysql": "10.0.0.1"], environment: "a\nb")) {
            XCTAssertTrue("\($0)".contains("environment name"), "\($0)")
        }
        XCTAssertThrowsError(try render(addresses: ["mysql": "10.0.0.1"], secrets: [:])) {
            XCTAssertTrue("\($0)".contains("'db_password' has no value"), "\($0)")
        }
        XCTAssertThrowsError(try render(addresses: ["mysql": "10.0.0.1"], secrets: ["db_password": "x\nDEBUG = True"])) { error in
            XCTAssertTrue("\(error)".contains("the secret 'db_password' must be one line"), "\(error)")
            XCTAssertFalse("\(error)".contains("DEBUG"), "the error must not echo the secret: \(error)")
        }
    }

    /// The thesis' spider profile ships as an example, found the way the server finds its views.
    func testTheShippedSpiderProfileRendersForEveryTargetFile() throws {
        let resources = try ResourceDirectory.find(configured: nil)
        let path = ServiceProfile.examplesDirectory(in: resources) + "/spider.yaml"
        let spider = try ServiceProfile.parse(String(contentsOfFile: path, encoding: .utf8))
        XCTAssertEqual(Set(spider.dependencies.keys), ["mysql", "redis", "rabbitmq", "mongo"])
        XCTAssertEqual(Set(spider.targets.keys), ["web", "daemon"])
        let addresses = ["mysql": "10.77.20.11", "redis": "10.77.20.12", "rabbitmq": "10.77.20.13", "mongo": "10.77.20.14"]
        let renderer = ProfileRenderer(profile: spider, environment: "staging-4", dependencyAddresses: addresses)
        let secrets = ["mysql_password": "my-Secret", "rabbitmq_password": "rabbit-Secret"]
        let web = try XCTUnwrap(spider.targets["web"]?.files.first)
        let settings = try renderer.render(web, mode: .guest(secrets: secrets))
        XCTAssertTrue(settings.contains("\"HOST\": \"10.77.20.11\""), settings)
        XCTAssertTrue(settings.contains("REDIS_URL = \"redis://10.77.20.12:6379/0\""), settings)
        XCTAssertTrue(settings.contains("my-Secret"), settings)
        let daemon = try XCTUnwrap(spider.targets["daemon"]?.files.first)
        let preview = try renderer.render(daemon, mode: .preview)
        XCTAssertTrue(preview.contains("amqp://flotilla:••••••@10.77.20.13:5672//"), preview)
        XCTAssertTrue(preview.contains("mongodb://10.77.20.14:27017/spider"), preview)
        XCTAssertFalse(preview.contains("rabbit-Secret"), preview)
        for target in spider.targets.values {
            for file in target.files {
                XCTAssertFalse(try renderer.render(file, mode: .preview).contains("{{"), file.path)
            }
        }
    }
}
