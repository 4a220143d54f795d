import AsyncHTTPClient
import Foundation
import Lab
import NIOCore

/// What the client tests set up through the API before `flotctl` is run, as an administrator
/// would; one way to do it for every client test.
extension RunningServer {
    /// POSTs (with `put`, PUTs) `body` as JSON to `path` with the API token; the JSON answer.
    /// Any status other than `expect` is an error that shows the answer.
    @discardableResult
    func sendJSON(
        _ path: String, put: Bool = false, _ body: [String: Any], token: String, expect: UInt = 201
    ) async throws
        -> [String: Any]
    {
        var request = HTTPClientRequest(url: url + path)
        request.method = put ? .PUT : .POST
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard response.status.code == expect else {
            throw HarnessError("\(request.method) \(path) answered \(response.status.code): \(text)")
        }
        return try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
    }

    /// The `lab` connection to the lab's vcsim and a `web` role on it that clones `tpl-web`;
    /// the role's id.
    @discardableResult
    func addLabWebRole(token: String, vcsim: VcsimProcess) async throws -> String {
        var lab: [String: Any] = ["name": "lab", "url": vcsim.url, "username": vcsim.username, "password": vcsim.password]
        lab["thumbprint"] = vcsim.thumbprint
        let connection = try await sendJSON("/api/v1/connections", lab, token: token)
        guard let connectionID = connection["id"] as? String else { throw HarnessError("no connection id in \(connection)") }
        let role = try await sendJSON(
            "/api/v1/roles",
            ["name": "web", "connectionID": connectionID, "template": "tpl-web", "sshUser": "root", "services": "sshd"], token: token)
        guard let roleID = role["id"] as? String else { throw HarnessError("no role id in \(role)") }
        return roleID
    }
}
