import Foundation
import Logging
import XCTVapor

@testable import App

/// Views and static files are found without the working directory, and the error path cannot
/// fail (issue 8, §3: `flotilla serve` outside the checkout answered every page with nothing).
final class ResourceTests: XCTestCase {
    /// The built `flotilla` program, beside the test bundle (`swift build --build-tests` makes both).
    private var program: String {
        get throws {
            let folder = Bundle.main.bundleURL.deletingLastPathComponent()
            let candidates = [
                folder.appendingPathComponent("flotilla").path,
                ResourceDirectory.checkoutDirectory + "/.build/debug/flotilla",
            ]
            guard let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) else {
                throw TestSetupError("no built flotilla program in \(candidates); `swift build --build-tests` builds it")
            }
            return found
        }
    }

    func testServerStartedElsewhereServesTheSignInPage() async throws {
        let workingDirectory = try temporaryDirectory()
        let port = try freeTCPPort()
        let server = try launch(
            try program, in: workingDirectory, ["serve"],
            environment: [
                "FLOTILLA_PORT": String(port), "FLOTILLA_SYNC_SECONDS": "0",
            ])
        defer { server.stop() }

        let page = try await server.get("http://127.0.0.1:\(port)/login")
        XCTAssertEqual(page.status, 200, page.body)
        XCTAssertTrue(page.body.contains("name=\"password\""), "not the sign-in page: \(page.body.prefix(300))")
        let stylesheet = try await server.get("http://127.0.0.1:\(port)/css/flotilla.css")
        XCTAssertEqual(stylesheet.status, 200)
    }

    func testServerRefusesToStartWithoutItsResourcesAndSaysWhereItLooked() throws {
        let workingDirectory = try temporaryDirectory()
        let missing = workingDirectory + "/no-such-folder"
        let server = try launch(try program, in: workingDirectory, ["serve"], environment: ["FLOTILLA_RESOURCES_DIR": missing])
        server.process.waitUntilExit()
        XCTAssertEqual(server.process.terminationStatus, 2)
        let errors = server.errorOutput
        XCTAssertTrue(errors.contains("FLOTILLA_RESOURCES_DIR") && errors.contains(missing), errors)
    }

    func testLookupPrefersTheSettingThenBesideTheProgramThenTheCheckout() throws {
        let root = try temporaryDirectory()
        let installed = root + "/usr/share/flotilla"
        let checkout = root + "/src/flotilla"
        for folder in [installed, checkout] {
            try FileManager.default.createDirectory(atPath: folder + "/Resources/Views", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: folder + "/Public", withIntermediateDirectories: true)
        }
        let program = root + "/usr/bin/flotilla"
        XCTAssertEqual(try ResourceDirectory.find(configured: nil, executable: program, checkout: checkout).path, installed)
        XCTAssertEqual(try ResourceDirectory.find(configured: nil, executable: root + "/opt/flotilla", checkout: checkout).path, checkout)
        XCTAssertEqual(try ResourceDirectory.find(configured: checkout, executable: program, checkout: installed).path, checkout)

        XCTAssertThrowsError(try ResourceDirectory.find(configured: nil, executable: root + "/opt/bin/flotilla", checkout: root + "/gone"))
        { error in
            let text = String(describing: error)
            for place in [root + "/opt/share/flotilla", root + "/opt/bin", root + "/gone"] {
                XCTAssertTrue(text.contains(place), "\(place) not named in: \(text)")
            }
        }
    }

    func testMissingErrorViewGivesAPlainText500ThatIsLogged() async throws {
        // Every view is missing, the error view included: the sign-in page fails, then its error page does.
        let resources = try temporaryDirectory()
        try FileManager.default.createDirectory(atPath: resources + "/Resources/Views", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: resources + "/Public", withIntermediateDirectories: true)
        let log = CapturedLog()
        try await TestApp.run(
            ["FLOTILLA_RESOURCES_DIR": resources],
            beforeBoot: { app in
                app.logger = Logger(label: "test") { _ in log }
            }
        ) { app in
            let client = try TestClient(app)
            let page = try await client.request(.GET, "/login")
            XCTAssertEqual(page.status, .internalServerError)
            XCTAssertEqual(page.headers.contentType, .plainText)
            XCTAssertTrue(page.body.string.contains("500"), page.body.string)
            XCTAssertTrue(
                log.lines.contains { $0.level == .error && $0.message.contains("GET /login answered 500") },
                "\(log.lines.filter { $0.level >= .error })")
            XCTAssertTrue(
                log.lines.contains { $0.level == .critical && $0.message.contains("error page could not be made") },
                "\(log.lines.filter { $0.level >= .error })")
        }
    }

    func testEveryServerErrorIsLogged() async throws {
        let log = CapturedLog()
        try await TestApp.run(beforeBoot: { app in
            app.logger = Logger(label: "test") { _ in log }
        }) { app in
            let request = Request(
                application: app, method: .GET, url: "/api/v1/anything", logger: app.logger, on: app.eventLoopGroup.next())
            let response = await ErrorRendering.answer(FlotillaError(.unavailable, "vSphere is away"), to: request)
            XCTAssertEqual(response.status, .serviceUnavailable)
            XCTAssertTrue(
                log.lines.contains { $0.level == .error && $0.message.contains("answered 503") },
                "\(log.lines.filter { $0.level >= .error })")
        }
    }

    // MARK: helpers

    private func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flotilla-resources-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func launch(
        _ program: String, in directory: String, _ arguments: [String],
        environment extra: [String: String]
    ) throws -> RunningProgram {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("FLOTILLA_") }
        environment["FLOTILLA_DATA_DIR"] = directory + "/data"
        environment["FLOTILLA_ADMIN_PASSWORD"] = TestApp.adminPassword
        environment.merge(extra) { _, new in new }
        process.environment = environment
        let output = directory + "/output.txt"
        let errors = directory + "/errors.txt"
        try Data().write(to: URL(fileURLWithPath: output))
        try Data().write(to: URL(fileURLWithPath: errors))
        process.standardOutput = FileHandle(forWritingAtPath: output)
        process.standardError = FileHandle(forWritingAtPath: errors)
        try process.run()
        return RunningProgram(process: process, outputPath: output, errorPath: errors)
    }

    private func freeTCPPort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard bound else { throw TestSetupError("no free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A started `flotilla` process and what it printed.
private struct RunningProgram {
    let process: Process
    let outputPath: String
    let errorPath: String

    var errorOutput: String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }

    /// Fetches a URL, waiting up to 60 s for the server to start listening.
    func get(_ url: String) async throws -> (status: Int, body: String) {
        let deadline = Date().addingTimeInterval(60)
        while true {
            do {
                let response = try await HTTPClient.shared.get(url: url).get()
                return (Int(response.status.code), response.body.map { String(buffer: $0) } ?? "")
            } catch {
                guard process.isRunning, Date() < deadline else {
                    let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
                    throw TestFailure("flotilla did not answer \(url): \(error); it printed:\n\(output)\n\(errorOutput)")
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}

private struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Keeps every log line, for tests that check what was logged.
final class CapturedLog: LogHandler, @unchecked Sendable {
    struct Line {
        var level: Logger.Level
        var message: String
    }

    private let lock = NSLock()
    private var stored: [Line] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    var lines: [Line] {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lock.lock()
        defer { lock.unlock() }
        stored.append(Line(level: event.level, message: event.message.description))
    }
}

/// A test that cannot set itself up fails, rather than skipping: `scripts/test` always builds
/// the program and runs on a machine with loopback, so a skip here would hide a broken build.
private struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
