import Fluent
import XCTVapor

@testable import App

/// The rules for connections, roles and VMs, on SQLite with vSphere and the guests in memory
/// (no root, no vcsim). `LifecycleTests` proves the same paths against real guests.
final class VMRulesTests: XCTestCase {
    func testConnectionTestReportsWhatTheEndpointShows() async throws {
        try await InMemoryWorld.run { world in
            let input = Connections.Input(name: "other", url: "https://vcenter.example/sdk", username: "u", password: "p")
            let report = try world.admin.decode(
                Connections.Report.self,
                try await world.admin.request(.POST, "/api/v1/connections/test", json: input))
            XCTAssertEqual(report.templates, ["tpl-redis", "tpl-web"])
            XCTAssertEqual(report.datacenters, ["DC0"])
            var wrong = input
            wrong.password = "wrong"
            let refused = try await world.admin.request(.POST, "/api/v1/connections/test", json: wrong)
            XCTAssertEqual(refused.status, .serviceUnavailable)
            XCTAssertEqual(refused.errorCode, "unavailable", refused.body.string)
        }
    }

    func testARoleNeedsATemplateOfItsConnection() async throws {
        try await InMemoryWorld.run { world in
            let answer = try await world.admin.request(
                .POST, "/api/v1/roles",
                json: Roles.Input(
                    name: "db", connectionID: world.connectionID, template: "tpl-db"))
            XCTAssertEqual(answer.status, .badRequest)
            XCTAssertTrue(
                answer.body.string.contains("'tpl-db' is not a template on that connection (it has: tpl-redis, tpl-web)"),
                answer.body.string)
            let roles = try world.admin.decode([API.RoleBody].self, try await world.admin.request(.GET, "/api/v1/roles"))
            XCTAssertEqual(roles.map(\.name), ["redis", "web"])
            XCTAssertEqual(roles.map(\.networkStyle), ["ifupdown", "ifupdown"])
        }
    }

    /// A role's name ends up in host names (`{env}-{role}-{n}`), so it follows their rule.
    func testARoleNameMustFitInAHostName() async throws {
        try await InMemoryWorld.run { world in
            for name in ["web_api", "-web", "web-", "wéb"] {
                let answer = try await world.admin.request(
                    .POST, "/api/v1/roles",
                    json: Roles.Input(
                        name: name, connectionID: world.connectionID, template: "tpl-web"))
                XCTAssertEqual(answer.status, .badRequest, "\(name): \(answer.body.string)")
            }
            let accepted = try await world.admin.request(
                .POST, "/api/v1/roles",
                json: Roles.Input(
                    name: "web-api", connectionID: world.connectionID, template: "tpl-web"))
            XCTAssertEqual(accepted.status, .created, accepted.body.string)
            let blueprint = """
                name: api-1
                roles: { web-api: 2 }
                network: { range: 10.77.9.10-10.77.9.20, netmask: 255.255.255.0, gateway: 10.77.9.1 }
                """
            let planned = try await world.admin.request(.POST, "/api/v1/blueprints/check", json: API.BlueprintText(blueprint: blueprint))
            XCTAssertEqual(planned.status, .ok, "every accepted role name can be used in a blueprint: \(planned.body.string)")
        }
    }

    func testBadVMInputIsRefusedAndChangesNothing() async throws {
        try await InMemoryWorld.run { world in
            try await world.addReadyVM("web-01", "10.77.5.20")
            let cases: [(VMs.Input, HTTPStatus, String)] = [
                (input("web-02", "10.77.5.300"), .badRequest, "not an IPv4 address"),
                (input("web_02", "10.77.5.21"), .badRequest, "host name 'web_02' is not valid"),
                (input("web-02", "10.77.5.21", gateway: "10.77.6.1"), .badRequest, "outside the subnet"),
                (input("web-02", "10.77.5.21", role: "mail"), .badRequest, "'mail' is not a known role"),
                (input("web-02", "10.77.5.21", confirmation: "Other-pass-1"), .badRequest, "do not match"),
                (input("web-02", "10.77.5.20"), .conflict, "10.77.5.20 is already used by another VM"),
                (input("web-01", "10.77.5.21"), .conflict, "a VM named web-01 already exists"),
            ]
            for (input, status, message) in cases {
                let answer = try await world.admin.request(.POST, "/api/v1/environments/\(world.environmentID)/vms", json: input)
                XCTAssertEqual(answer.status, status, "\(input.hostName) \(input.ip): \(answer.body.string)")
                XCTAssertTrue(answer.body.string.contains(message), "\(message) in \(answer.body.string)")
            }
            let vms = try await VM.query(on: world.app.db).all()
            XCTAssertEqual(vms.map(\.hostName), ["web-01"], "no refused VM was recorded")
            let clones = await world.vsphere.calls.filter { $0.hasPrefix("clone") }
            XCTAssertEqual(clones.count, 1, "no refused VM reached vSphere")
        }
    }

    func testCreatingAVMClonesPowersOnAndWaitsForItsGuest() async throws {
        try await InMemoryWorld.run { world in
            let vm = try await world.addReadyVM("web-01", "10.77.5.20")
            XCTAssertEqual(vm.status, "ready")
            XCTAssertEqual(vm.powerState, "poweredOn")
            let reference = try XCTUnwrap(vm.vsphereReference)
            let calls = await world.vsphere.calls
            XCTAssertEqual(calls.prefix(2), ["clone \(reference)", "power poweredOn \(reference)"])
            let machine = try await world.vsphere.machine(reference)
            XCTAssertEqual(machine.extraConfig[VMOperations.roleKey], "web", "the role travels in the VM's metadata")
            let logins = await world.shell.calls
            XCTAssertTrue(logins.contains { $0.commandLine == "hostname" && $0.host == "10.77.5.20" }, "the guest was asked who it is")
        }
    }

    func testAGuestThatAnswersAsAnotherHostFailsTheCreationAndIsDestroyed() async throws {
        try await InMemoryWorld.run { world in
            // Another machine already answers at the address: the new VM must not be taken for it.
            await world.shell.add(.init(hostName: "intruder", password: InMemoryWorld.guestPassword), at: "10.77.5.30")
            let answer = try await world.admin.request(
                .POST, "/api/v1/environments/\(world.environmentID)/vms", json: input("web-03", "10.77.5.30"))
            let created = try world.admin.decode(API.NewVMAnswer.self, answer)
            let job = try await world.waitForJob(created.jobID)
            XCTAssertEqual(job.status, "failed")
            let vm = try await world.vm(created.vm.id)
            XCTAssertEqual(vm.status, "failed")
            XCTAssertNil(vm.vsphereReference)
            XCTAssertTrue(vm.statusReason?.contains("answered SSH as 'intruder', not web-03") == true, vm.statusReason ?? "")
            XCTAssertTrue(vm.statusReason?.contains("the half-made VM was destroyed") == true, vm.statusReason ?? "")
            let machines = await world.vsphere.machines.values.filter { !$0.isTemplate }
            XCTAssertTrue(machines.isEmpty)
        }
    }

    private func input(
        _ name: String, _ ip: String, gateway: String = "10.77.5.1", role: String = "web",
        confirmation: String = InMemoryWorld.guestPassword
    ) -> VMs.Input {
        VMs.Input(
            hostName: name, ip: ip, netmask: "255.255.255.0", gateway: gateway, dns1: nil, dns2: nil, role: role,
            password: InMemoryWorld.guestPassword, passwordConfirmation: confirmation, notes: nil)
    }
}
