import Fluent
import Foundation
import VSphere
import XCTVapor

@testable import App

/// The real application on SQLite with vSphere and the guests in memory: a signed-in system
/// administrator, a connection `lab`, the roles `web` and `redis`, and an environment
/// `staging`. For the rules (validation, job plans, failure paths) without root or vcsim.
struct InMemoryWorld {
    let app: Application
    let admin: TestClient
    let vsphere: InMemoryVSphere
    let shell: InMemoryGuestShell
    let connectionID: UUID
    let environmentID: UUID

    static let guestPassword = "Guest-pass-1"

    /// - Parameter guests: the shell the application uses, given the in-memory guests (e.g. a
    ///   wrapper that adds what some guests do); the guests themselves by default.
    static func run(
        _ extra: [String: String] = [:], guests: (InMemoryGuestShell) -> any GuestShell = { $0 },
        _ body: (InMemoryWorld) async throws -> Void
    ) async throws {
        let vsphere = InMemoryVSphere()
        let shell = InMemoryGuestShell()
        try await TestApp.run(
            [
                "FLOTILLA_GUEST_BOOT_SECONDS": "5", "FLOTILLA_SYNC_SECONDS": "0",
                // In-memory VMs have made-up addresses: nothing probes them.
                "FLOTILLA_REACHABILITY_SECONDS": "0",
            ].merging(extra) { $1 },
            outside: OutsideSystems(vsphere: vsphere, shell: guests(shell))
        ) { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            let connection = try admin.decode(
                API.ConnectionBody.self,
                try await admin.request(
                    .POST, "/api/v1/connections",
                    json: Connections.Input(
                        name: "lab", url: "https://vcenter.example/sdk", username: "flotilla", password: "vsphere-pass")))
            for role in ["web", "redis"] {
                let answer = try await admin.request(
                    .POST, "/api/v1/roles",
                    json: Roles.Input(
                        name: role, connectionID: connection.id, template: "tpl-\(role)", sshUser: "root", services: "sshd,\(role)"))
                XCTAssertEqual(answer.status, .created, answer.body.string)
            }
            let environment = try admin.decode(
                API.EnvironmentBody.self,
                try await admin.request(
                    .POST, "/api/v1/environments", json: API.EnvironmentInput(name: "staging", description: "in memory")))
            try await body(
                InMemoryWorld(
                    app: app, admin: admin, vsphere: vsphere, shell: shell, connectionID: connection.id,
                    environmentID: environment.id))
        }
    }

    /// A VM made through the API's create job; its guest answers at `ip` with the guest password.
    @discardableResult
    func addReadyVM(_ hostName: String, _ ip: String, role: String = "web", in environmentID: UUID? = nil) async throws -> API.VMBody {
        await shell.add(.init(hostName: hostName, password: Self.guestPassword, running: ["sshd", role]), at: ip)
        let answer = try await admin.request(
            .POST, "/api/v1/environments/\(environmentID ?? self.environmentID)/vms",
            json: VMs.Input(
                hostName: hostName, ip: ip, netmask: "24", gateway: "10.77.5.1", dns1: "10.77.5.1", dns2: nil, role: role,
                password: Self.guestPassword, passwordConfirmation: Self.guestPassword, notes: nil))
        XCTAssertEqual(answer.status, .accepted, answer.body.string)
        let created = try admin.decode(API.NewVMAnswer.self, answer)
        let job = try await waitForJob(created.jobID)
        XCTAssertEqual(job.status, "succeeded", job.steps?.map(\.log).joined() ?? "")
        return try await vm(created.vm.id)
    }

    func vm(_ id: UUID) async throws -> API.VMBody {
        try admin.decode(API.VMBody.self, try await admin.request(.GET, "/api/v1/vms/\(id)"))
    }

    func job(_ id: UUID) async throws -> API.JobBody {
        try admin.decode(API.JobBody.self, try await admin.request(.GET, "/api/v1/jobs/\(id)"))
    }

    /// Waits for a job of this application's engine and reads it with its steps.
    func waitForJob(_ id: UUID) async throws -> API.JobBody {
        try await app.flotilla.jobs.waitUntilFinished(id)
        return try await job(id)
    }

    /// Starts a job through the API (an answer of 202 with its ID) and waits for it.
    func runJob(_ method: HTTPMethod, _ path: String, json: (any Encodable)? = nil) async throws -> API.JobBody {
        let answer = try await admin.request(method, path, json: json)
        XCTAssertEqual(answer.status, .accepted, answer.body.string)
        return try await waitForJob(try admin.decode(API.JobReference.self, answer).jobID)
    }
}
