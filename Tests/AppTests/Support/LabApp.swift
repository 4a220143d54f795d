import Fluent
import Foundation
import Lab
import XCTVapor

@testable import App

/// The set-up every App lab test shares (root, vcsim and guest namespaces; run under the lab
/// lock): one place that starts the lab, follows it, and always takes it down again.
extension LabConfiguration {
    /// Starts this lab on a clean machine (an earlier one is taken down first), runs `body` with a
    /// fresh test app built with `extra` settings and the lab's vcsim, then closes the lab — also
    /// when `body` throws, so a failed test never leaves guests behind for the next one.
    func withApp(_ extra: [String: String] = [:], _ body: (Application, VcsimProcess) async throws -> Void) async throws {
        try await Lab.withRunning(self) { vcsim in
            try await TestApp.run(extra) { app in try await body(app, vcsim) }
        }
    }
}

extension TestClient {
    /// Registers the lab's vcsim as connection "lab" and one role per name (template
    /// `tpl-<role>`, SSH as root, sshd watched), then adopts the lab's pre-created VMs into
    /// environment "lab" as `scripts/run --vms` does. Returns how many VMs it adopted.
    func adoptLab(_ lab: LabConfiguration, vcsim: VcsimProcess, roles: [String], patience: Duration = .seconds(90)) async throws -> Int {
        let connectionBody = try decode(
            API.ConnectionBody.self,
            try await request(
                .POST, "/api/v1/connections",
                json: Connections.Input(
                    name: "lab", url: vcsim.url, username: vcsim.username, password: vcsim.password, thumbprint: vcsim.thumbprint)))
        for role in roles {
            let created = try await request(
                .POST, "/api/v1/roles",
                json: Roles.Input(name: role, connectionID: connectionBody.id, template: "tpl-\(role)", sshUser: "root", services: "sshd"))
            XCTAssertEqual(created.status, .created, created.body.string)
        }
        let found = try await VSphereConnection.find(connectionBody.id, on: app.db)
        let flotilla = app.flotilla
        return try await VSphereImport(
            database: app.db, secrets: flotilla.secrets, vsphere: flotilla.vsphere, shell: flotilla.shell, actor: .system,
            logger: app.logger
        ).adoptLabVMs(on: try XCTUnwrap(found), into: "lab", password: lab.demoPassword, patience: patience)
    }
}
