import XCTest

@testable import App

final class ConfigTests: XCTestCase {
    func testDefaults() throws {
        let config = try FlotillaConfig(values: [:])
        XCTAssertEqual(config.listenHost, "127.0.0.1")
        XCTAssertEqual(config.listenPort, 8080)
        XCTAssertEqual(config.database, .sqlite(path: "./data/flotilla.sqlite"))
        XCTAssertEqual(config.backupDirectory, "./data/backups")
        XCTAssertEqual(config.displayTimeZone.secondsFromGMT(), 0)
        XCTAssertNil(config.secureCookies)
        XCTAssertEqual(config.passwordMinimumLength, 8)
        XCTAssertEqual(config.loginFailureLimit, 5)
        XCTAssertEqual(config.loginLockoutSeconds, 60)
        XCTAssertTrue(config.trustedProxies.isEmpty)
        XCTAssertNil(config.smtp)
    }

    func testBadValuesNameTheSetting() {
        let cases: [(String, String)] = [
            ("FLOTILLA_PORT", "80000"), ("FLOTILLA_PORT", "http"), ("FLOTILLA_TIMEZONE", "Mars/Olympus"),
            ("FLOTILLA_TRUSTED_PROXIES", "10.0.0.0/33"), ("FLOTILLA_TRUSTED_PROXIES", "proxy.example"),
            ("FLOTILLA_DATABASE_URL", "mysql://x"), ("FLOTILLA_COOKIE_SECURE", "maybe"),
            ("FLOTILLA_PASSWORD_MIN_LENGTH", "2"), ("FLOTILLA_SESSION_HOURS", "0"), ("FLOTILLA_TYPO", "1"),
        ]
        for (setting, value) in cases {
            XCTAssertThrowsError(try FlotillaConfig(values: [setting: value]), "\(setting)=\(value)") { error in
                XCTAssertEqual((error as? ConfigError)?.setting, setting)
                XCTAssertTrue("\(error)".contains(setting))
            }
        }
        XCTAssertThrowsError(try FlotillaConfig(values: ["FLOTILLA_SMTP_HOST": "mail", "FLOTILLA_SMTP_SECURITY": "ssl3"])) {
            XCTAssertEqual(($0 as? ConfigError)?.setting, "FLOTILLA_SMTP_SECURITY")
        }
        XCTAssertThrowsError(try FlotillaConfig(values: ["FLOTILLA_ADMIN_PASSWORD": "short"])) {
            XCTAssertEqual(($0 as? ConfigError)?.setting, "FLOTILLA_ADMIN_PASSWORD")
        }
    }

    func testConfigFileIsOverlaidByTheEnvironment() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("flotilla-\(UUID()).conf")
        try """
        # comment
        FLOTILLA_PORT=9090
        FLOTILLA_TIMEZONE="Asia/Shanghai"
        FLOTILLA_TRUSTED_PROXIES = 127.0.0.1/32, ::1
        FLOTILLA_DATABASE_URL=postgres://flotilla:secret@db.internal:5432/flotilla
        """.write(to: file, atomically: true, encoding: .utf8)
        let config = try FlotillaConfig.load(environment: ["FLOTILLA_CONFIG": file.path, "FLOTILLA_PORT": "9191", "HOME": "/root"])
        XCTAssertEqual(config.listenPort, 9191)
        XCTAssertEqual(config.displayTimeZone.identifier, "Asia/Shanghai")
        XCTAssertEqual(config.trustedProxies.map(\.description), ["127.0.0.1/32", "::1/128"])
        XCTAssertEqual(config.database, .postgres(url: "postgres://flotilla:secret@db.internal:5432/flotilla"))
        XCTAssertThrowsError(try FlotillaConfig.load(environment: ["FLOTILLA_CONFIG": "/nonexistent/flotilla.conf"])) {
            XCTAssertEqual(($0 as? ConfigError)?.setting, "FLOTILLA_CONFIG")
        }
    }

    func testAddressesAndBlocks() throws {
        XCTAssertEqual(IPAddress("10.1.2.3")?.description, "10.1.2.3")
        XCTAssertEqual(IPAddress("::ffff:10.1.2.3")?.description, "10.1.2.3")
        XCTAssertEqual(IPAddress("fd00::1")?.description, "fd00::1")
        for bad in ["", "10.1.2", "10.1.2.256", "1.2.3.4 ", "host", "1.2.3.4/24", "010.1.2.3x"] {
            XCTAssertNil(IPAddress(bad), bad)
        }
        let block = try XCTUnwrap(CIDR("10.20.0.0/14"))
        XCTAssertTrue(block.contains(try XCTUnwrap(IPAddress("10.23.255.255"))))
        XCTAssertFalse(block.contains(try XCTUnwrap(IPAddress("10.24.0.0"))))
        XCTAssertFalse(block.contains(try XCTUnwrap(IPAddress("fd00::1"))))
        XCTAssertTrue(try XCTUnwrap(CIDR("0.0.0.0/0")).contains(try XCTUnwrap(IPAddress("8.8.8.8"))))
        XCTAssertNil(CIDR("10.0.0.0/-1"))
        XCTAssertNil(CIDR("10.0.0.0/+8"))
    }
}
