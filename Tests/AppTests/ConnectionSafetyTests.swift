import VSphere
import XCTVapor

@testable import App

/// A thumbprint is never stored for a plain-HTTP URL (it would pin nothing while the settings
/// say "pinned"), and a connection test repeats nothing of what answered (security review,
/// findings 10 and 11).
final class ConnectionSafetyTests: XCTestCase {
    private let pin = String(repeating: "AB", count: 32)

    func testThumbprintWithPlainHTTPIsRefused() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            for path in ["/api/v1/connections", "/api/v1/connections/test"] {
                let answer = try await admin.request(
                    .POST, path,
                    json: Connections.Input(
                        name: "plainpin", url: "http://127.0.0.1:9/sdk", username: "u", password: "p", thumbprint: pin))
                XCTAssertEqual(answer.status, .badRequest, answer.body.string)
                XCTAssertTrue(answer.body.string.contains("pins an HTTPS certificate"), answer.body.string)
            }
            let list = try await admin.request(.GET, "/api/v1/connections")
            XCTAssertFalse(list.body.string.contains("plainpin"), "nothing was stored")
            // The same settings over HTTPS pass validation (the test then fails to connect, as nothing listens).
            let https = try await admin.request(
                .POST, "/api/v1/connections/test",
                json: Connections.Input(
                    name: "pinned", url: "https://127.0.0.1:9/sdk", username: "u", password: "p", thumbprint: pin))
            XCTAssertEqual(https.status, .serviceUnavailable, https.body.string)
        }
    }

    func testConnectionTestDoesNotRepeatWhatAnswered() async throws {
        let marker = "PRIVATE-INTERNAL-PAGE"
        let decoy = try await Application.make(.testing)
        decoy.post("sdk") { _ in
            Response(
                status: .notImplemented, headers: ["Content-Type": "text/html"],
                body: .init(string: "<!DOCTYPE HTML><title>Error response</title>\(marker)"))
        }
        try await decoy.server.start(address: .hostname("127.0.0.1", port: 0))
        do {
            let port = try XCTUnwrap(decoy.http.server.shared.localAddress?.port)
            try await TestApp.run { app in
                let admin = try TestClient(app)
                try await admin.signIn("admin", TestApp.adminPassword)
                let answer = try await admin.request(
                    .POST, "/api/v1/connections/test",
                    json: Connections.Input(
                        name: "decoy", url: "http://127.0.0.1:\(port)/sdk", username: "u", password: "p"))
                XCTAssertEqual(answer.status, .serviceUnavailable)
                let text = answer.body.string
                XCTAssertFalse(text.contains(marker) || text.contains("Error response") || text.contains("DOCTYPE"), text)
                XCTAssertTrue(text.contains("not vSphere"), text)
            }
        } catch {
            await decoy.server.shutdown()
            try await decoy.asyncShutdown()
            throw error
        }
        await decoy.server.shutdown()
        try await decoy.asyncShutdown()
    }

    func testFailuresAreDescribedByKindOnly() {
        let cases: [(any Error, String)] = [
            (VSphereError.fault(Fault(name: .invalidLogin, message: "secret detail")), "user name or password was refused"),
            (VSphereError.fault(Fault(name: "Whatever", message: "secret detail")), "SOAP fault"),
            (VSphereError.transport(TransportFailure(kind: .connectionRefused, message: "secret detail")), "refused"),
            (VSphereError.invalidResponse("secret detail"), "not vSphere"),
        ]
        for (error, expected) in cases {
            let text = Connections.describeTestFailure(error)
            XCTAssertTrue(text.contains(expected) && !text.contains("secret"), text)
        }
    }
}
