import Foundation
import VSphere
import XCTest

/// Whatever answers at a vSphere URL is described by status and type, never repeated (security
/// review, finding 11), and a certificate pin is never silently dropped (finding 10).
final class UntrustedAnswerTests: XCTestCase {
    private let marker = "PRIVATE-PAGE-CONTENT"

    func testHTMLAnswerIsDescribedByStatusAndTypeOnly() async throws {
        let server = try PlainHTTPServer(
            status: 501, contentType: "text/html;charset=utf-8",
            body: "<!DOCTYPE HTML><html><title>Error response</title>\(marker)</html>")
        defer { server.stop() }
        do {
            _ = try await VSphereClient.connect(url: server.url, username: "u", password: "p", timeout: .seconds(10))
            XCTFail("a web page was taken for vSphere")
        } catch {
            let text = String(describing: error)
            XCTAssertFalse(text.contains(marker) || text.contains("Error response") || text.contains("DOCTYPE"), text)
            XCTAssertTrue(text.contains("501") && text.contains("text/html"), text)
        }
    }

    func testBrokenXMLIsNotRepeatedEither() async throws {
        let server = try PlainHTTPServer(status: 200, contentType: "text/xml", body: "<\(marker)></mismatched>")
        defer { server.stop() }
        do {
            _ = try await VSphereClient.connect(url: server.url, username: "u", password: "p", timeout: .seconds(10))
            XCTFail("broken XML was accepted")
        } catch {
            let text = String(describing: error)
            XCTAssertFalse(text.contains(marker) || text.contains("mismatched"), text)
            XCTAssertTrue(text.contains("not well-formed XML"), text)
        }
    }

    func testPinWithPlainHTTPIsRefusedBeforeAnythingIsSent() async throws {
        let server = try PlainHTTPServer(status: 200, contentType: "text/xml", body: "")
        defer { server.stop() }
        let pin = String(repeating: "AB", count: 32)
        do {
            _ = try await VSphereClient.connect(
                url: server.url, username: "u", password: "secret", trust: .pinnedSHA256(pin),
                timeout: .seconds(10))
            XCTFail("the pin was dropped for http://")
        } catch {
            XCTAssertTrue(String(describing: error).contains("needs an https:// URL"), String(describing: error))
        }
        try await Task.sleep(for: .milliseconds(300))  // the server's output is read asynchronously
        XCTAssertEqual(server.requestCount, 0, "credentials went out in clear text")
    }
}

/// A one-answer HTTP server on a free loopback port (python3's http.server), counting requests.
final class PlainHTTPServer: @unchecked Sendable {
    let process: Process
    let url: URL
    private let output: FileHandle
    private let lines = Locked<[String]>([])

    private static let script = """
        import http.server, sys
        status, ctype, body = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get('Content-Length', 0)))
                print('request', flush=True)
                self.send_response(status)
                self.send_header('Content-Type', ctype)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
        print('port', server.server_address[1], flush=True)
        server.serve_forever()
        """

    init(status: Int, contentType: String, body: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script, String(status), contentType, body]
        let pipe = Pipe()
        process.standardOutput = pipe
        output = pipe.fileHandleForReading
        try process.run()
        var buffer = Data()
        while !String(decoding: buffer, as: UTF8.self).contains("\n") {
            let chunk = output.availableData
            if chunk.isEmpty { throw SimulatorError("python3 http.server did not start") }
            buffer.append(chunk)
        }
        let first = String(decoding: buffer, as: UTF8.self).split(separator: "\n")[0]
        guard first.hasPrefix("port "), let port = Int(first.dropFirst(5)) else { throw SimulatorError("unexpected output: \(first)") }
        url = URL(string: "http://127.0.0.1:\(port)/sdk")!
        output.readabilityHandler = { [lines] handle in
            let text = String(decoding: handle.availableData, as: UTF8.self)
            lines.withLockedValue { $0 += text.split(separator: "\n").map(String.init) }
        }
    }

    var requestCount: Int { lines.withLockedValue { $0.filter { $0 == "request" }.count } }

    /// SIGKILL: the test runner's children may inherit an ignored SIGTERM, which python keeps.
    func stop() {
        output.readabilityHandler = nil
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
