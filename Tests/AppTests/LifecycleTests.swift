import Fluent
import Lab
import RemoteShell
import VSphere
import XCTVapor

@testable import App

/// The VM lifecycle end to end: Flotilla's API drives vcsim, and the lab turns each VM into a
/// guest that boots, answers SSH with the chosen password, and powers off and on like a VM.
final class LifecycleTests: XCTestCase {
    /// vcsim refuses to create VMs whose name starts with `bad-`, as a full cluster would.
    static let lab = LabConfiguration(
        stateDirectory: "/var/lib/flotilla-lab-apptest",
        vcsim: .launch(VcsimLaunch(extraArguments: ["-fail-prefix", "bad-", "-fail-fault", "InsufficientResourcesFault"])),
        roles: ["web", "redis"], pollInterval: .milliseconds(250))

    private struct Fixture {
        let app: Application
        let admin: TestClient
        let client: VSphereClient
        let environmentID: UUID
        let vcsimPID: Int32
    }

    /// Starts a lab and an app with a connection to the lab's vcsim, a `web` role and an environment.
    private func withLab(_ extra: [String: String] = [:], _ body: (Fixture) async throws -> Void) async throws {
        try await Lab.withRunning(Self.lab) { vcsim in
            let client = try await VSphereClient.connect(
                url: try XCTUnwrap(URL(string: vcsim.url)), username: vcsim.username,
                password: vcsim.password, trust: .pinnedSHA256(try XCTUnwrap(vcsim.thumbprint)))
            defer { Task { try? await client.close() } }
            try await TestApp.run(["FLOTILLA_GUEST_BOOT_SECONDS": "20"].merging(extra) { $1 }) { app in
                let admin = try TestClient(app)
                try await admin.signIn("admin", TestApp.adminPassword)
                let connectionInput = Connections.Input(
                    name: "lab", url: vcsim.url, username: vcsim.username, password: vcsim.password, thumbprint: vcsim.thumbprint)
                let report = try admin.decode(
                    Connections.Report.self, try await admin.request(.POST, "/api/v1/connections/test", json: connectionInput))
                XCTAssertTrue(report.templates.contains("tpl-web"), "the test shows the templates: \(report.templates)")
                let connection = try admin.decode(
                    API.ConnectionBody.self, try await admin.request(.POST, "/api/v1/connections", json: connectionInput))
                let role = try await admin.request(
                    .POST, "/api/v1/roles",
                    json: Roles.Input(
                        name: "web", connectionID: connection.id, template: "tpl-web", sshUser: "root", services: "sshd"))
                XCTAssertEqual(role.status, .created, role.body.string)
                let environment = try admin.decode(
                    API.EnvironmentBody.self,
                    try await admin.request(
                        .POST, "/api/v1/environments", json: API.EnvironmentInput(name: "staging-3", description: "lab")))
                try await body(Fixture(app: app, admin: admin, client: client, environmentID: environment.id, vcsimPID: vcsim.pid))
            }
        }
    }

    private func waitForJob(_ client: TestClient, _ id: UUID, timeout: Duration = .seconds(90)) async throws -> API.JobBody {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let job = try client.decode(API.JobBody.self, try await client.request(.GET, "/api/v1/jobs/\(id)"))
            if JobStatus(rawValue: job.status)?.isFinished == true { return job }
            try await Task.sleep(for: .milliseconds(250))
        }
        XCTFail("job \(id) did not finish within \(timeout)")
        throw FlotillaError(.unavailable, "job timeout")
    }

    private func vmInput(
        _ name: String, _ ip: String, netmask: String = "16", gateway: String = "10.77.0.1",
        password: String = "Guest-pass-1"
    ) -> VMs.Input {
        VMs.Input(
            hostName: name, ip: ip, netmask: netmask, gateway: gateway, dns1: "10.77.0.1", dns2: nil,
            role: "web", password: password, passwordConfirmation: password, notes: "made by a test")
    }

    private func ssh(_ ip: String, password: String) async throws -> String {
        let connection = try await SSHConnection.connect(
            to: SSHTarget(host: ip, user: "root", authentication: .password(password)),
            hostKeyStore: InMemoryHostKeyStore(), options: SSHConnectionOptions(connectTimeout: .seconds(3), handshakeTimeout: .seconds(5)))
        defer { Task { await connection.close() } }
        return try await connection.run(Command("hostname"), timeout: .seconds(10)).output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testAddPowerAndDeleteAVMThroughTheAPI() async throws {
        try await withLab { fixture in
            let admin = fixture.admin
            let answer = try await admin.request(
                .POST, "/api/v1/environments/\(fixture.environmentID)/vms", json: vmInput("web-01", "10.77.5.10"))
            XCTAssertEqual(answer.status, .accepted, answer.body.string)
            XCTAssertFalse(answer.body.string.contains("Guest-pass-1"), "the password is never answered")
            let created = try admin.decode(API.NewVMAnswer.self, answer)
            let job = try await waitForJob(admin, created.jobID)
            XCTAssertEqual(job.status, "succeeded", job.steps?.map(\.log).joined() ?? "")
            let log = try XCTUnwrap(job.steps?.first?.log)
            for phase in ["cloning web-01", "powering on", "guest reports 10.77.5.10", "SSH answers"] {
                XCTAssertTrue(log.contains(phase), "step log mentions '\(phase)': \(log)")
            }
            let vm = try admin.decode(API.VMBody.self, try await admin.request(.GET, "/api/v1/vms/\(created.vm.id)"))
            XCTAssertEqual(vm.status, "ready")
            let listed = try admin.decode(ListResponse<Environments.Row>.self, try await admin.request(.GET, "/api/v1/environments"))
            XCTAssertEqual(listed.items.map(\.vmCount), [1])
            XCTAssertEqual(vm.powerState, "poweredOn")
            let hostName = try await ssh("10.77.5.10", password: "Guest-pass-1")
            XCTAssertEqual(hostName, "web-01")

            // An independent look at vSphere: the clone exists with its metadata and role.
            let machine = try await fixture.client.findVirtualMachine(named: "web-01")
            let summary = try await machine.summary()
            XCTAssertEqual(summary.guestInfo["guestinfo.flotilla.role"], "web")
            let guest = try GuestConfiguration(guestInfo: summary.guestInfo)
            XCTAssertEqual(guest.ipv4?.address, "10.77.5.10")
            XCTAssertNil(guest.passwordHash, "the guest applied the password; its hash left the metadata")
            let stored = try await VM.find(created.vm.id, on: fixture.app.db)
            XCTAssertFalse(stored?.passwordSealed.contains("Guest-pass-1") ?? true, "sealed at rest")

            // Power the environment off: the guest stops answering; restart brings it back.
            let off = try admin.decode(
                API.JobReference.self,
                try await admin.request(
                    .POST, "/api/v1/environments/power", json: API.PowerInput(action: "off", ids: [fixture.environmentID])))
            let offJob = try await waitForJob(admin, off.jobID)
            XCTAssertEqual(offJob.status, "succeeded")
            try await Task.sleep(for: .seconds(1))
            do {
                _ = try await ssh("10.77.5.10", password: "Guest-pass-1")
                XCTFail("a powered-off guest answered SSH")
            } catch let error as RemoteShellError {
                XCTAssertTrue([.connect, .timeout].contains(error.kind), "\(error)")
            }
            let restart = try admin.decode(
                API.JobReference.self,
                try await admin.request(
                    .POST, "/api/v1/environments/power", json: API.PowerInput(action: "restart", ids: [fixture.environmentID])))
            let restartJob = try await waitForJob(admin, restart.jobID)
            XCTAssertEqual(restartJob.status, "succeeded")
            var back = false
            for _ in 0..<20 where !back {
                back = (try? await ssh("10.77.5.10", password: "Guest-pass-1")) == "web-01"
                if !back { try await Task.sleep(for: .milliseconds(500)) }
            }
            XCTAssertTrue(back, "the guest answers again after the restart")

            // Delete the environment: the VM is destroyed first, then the records go.
            let delete = try admin.decode(
                API.JobReference.self, try await admin.request(.DELETE, "/api/v1/environments/\(fixture.environmentID)"))
            let deletion = try await waitForJob(admin, delete.jobID)
            XCTAssertEqual(deletion.status, "succeeded", deletion.steps?.map(\.log).joined() ?? "")
            let remaining = try await fixture.client.listVirtualMachines().map(\.name)
            XCTAssertFalse(remaining.contains("web-01"), "vSphere still lists web-01")
            let gone = try await admin.request(.GET, "/api/v1/environments/\(fixture.environmentID)")
            XCTAssertEqual(gone.status, .notFound)

            let audit = try await LogEntry.query(on: fixture.app.db).filter(\.$vmName == "web-01").sort(\.$id).all()
            XCTAssertEqual(audit.map(\.action), ["vm.create", "vm.power.off", "vm.power.restart", "vm.delete"])
            XCTAssertTrue(audit.allSatisfy { $0.operatorName == "admin" && $0.vmRole == "web" && $0.result == "success" })
        }
    }

    func testFailuresAreReportedAndLeaveNothingHalfMade() async throws {
        try await withLab(["FLOTILLA_GUEST_BOOT_SECONDS": "4"]) { fixture in
            let admin = fixture.admin
            let path = "/api/v1/environments/\(fixture.environmentID)/vms"
            // Bad input: nothing is created.
            let cases: [(VMs.Input, HTTPStatus, String)] = [
                (vmInput("web-02", "10.77.5.300"), .badRequest, "not an IPv4 address"),
                (vmInput("web-02", "10.77.5.20", netmask: "255.0.255.0"), .badRequest, "netmask"),
                (vmInput("web-02", "10.77.5.20", netmask: "33"), .badRequest, "netmask"),
                (vmInput("web-02", "10.77.5.20", gateway: "10.78.0.1"), .badRequest, "outside the subnet"),
                (vmInput("web 02; reboot", "10.77.5.20"), .badRequest, "host name"),
                (vmInput("web-02", "10.77.5.20", password: "short"), .badRequest, "8 to 128"),
            ]
            for (input, status, message) in cases {
                let response = try await admin.request(.POST, path, json: input)
                XCTAssertEqual(response.status, status, "\(input): \(response.body.string)")
                XCTAssertTrue(response.body.string.contains(message), "\(message): \(response.body.string)")
            }
            let vmCount = try await VM.query(on: fixture.app.db).count()
            XCTAssertEqual(vmCount, 0)

            // A guest that never comes up (its address is outside the lab's range, so no guest
            // boots): the job fails with the reason and the half-made VM is destroyed.
            let lost = try admin.decode(
                API.NewVMAnswer.self, try await admin.request(.POST, path, json: vmInput("web-03", "10.99.0.10", gateway: "10.99.0.1")))
            let job = try await waitForJob(admin, lost.jobID)
            XCTAssertEqual(job.status, "failed")
            XCTAssertTrue(job.steps?.first?.log.contains("never came up") ?? false, job.steps?.first?.log ?? "")
            let vm = try admin.decode(API.VMBody.self, try await admin.request(.GET, "/api/v1/vms/\(lost.vm.id)"))
            XCTAssertEqual(vm.status, "failed")
            XCTAssertTrue(vm.statusReason?.contains("half-made VM was destroyed") ?? false, vm.statusReason ?? "")
            let names = try await fixture.client.listVirtualMachines().map(\.name)
            XCTAssertFalse(names.contains("web-03"))
            let errors = try await LogEntry.query(on: fixture.app.db).filter(\.$kind == "error").filter(\.$vmName == "web-03").all()
            XCTAssertEqual(errors.count, 1)

            // The failed VM still holds its address: a duplicate is refused.
            let duplicate = try await admin.request(.POST, path, json: vmInput("web-04", "10.99.0.10", gateway: "10.99.0.1"))
            XCTAssertEqual(duplicate.status, .conflict)
        }
    }

    func testPasswordAndNetworkChangesAreAppliedInsideTheGuest() async throws {
        try await withLab { fixture in
            let admin = fixture.admin
            let created = try admin.decode(
                API.NewVMAnswer.self,
                try await admin.request(
                    .POST, "/api/v1/environments/\(fixture.environmentID)/vms", json: vmInput("web-05", "10.77.6.10")))
            let createJob = try await waitForJob(admin, created.jobID)
            XCTAssertEqual(createJob.status, "succeeded")

            // VM-9: the new password works inside the guest, the old one no longer does.
            let password = try admin.decode(
                API.JobReference.self,
                try await admin.request(
                    .POST, "/api/v1/vms/\(created.vm.id)/password",
                    json: VMs.PasswordInput(password: "Changed-pass-2", passwordConfirmation: "Changed-pass-2")))
            let passwordJob = try await waitForJob(admin, password.jobID)
            XCTAssertEqual(passwordJob.status, "succeeded", passwordJob.steps?.first?.log ?? "")
            let hostName = try await ssh("10.77.6.10", password: "Changed-pass-2")
            XCTAssertEqual(hostName, "web-05")
            do {
                _ = try await ssh("10.77.6.10", password: "Guest-pass-1")
                XCTFail("the old password still logs in")
            } catch let error as RemoteShellError {
                XCTAssertEqual(error.kind, .authentication)
            }

            // VM-10: the guest moves to the new address and answers there; metadata follows.
            let network = try admin.decode(
                API.JobReference.self,
                try await admin.request(
                    .POST, "/api/v1/vms/\(created.vm.id)/network",
                    json: VMs.NetworkInput(ip: "10.77.6.20", netmask: "255.255.0.0", gateway: "10.77.0.1", dns1: "10.77.0.1", dns2: nil)))
            let networkJob = try await waitForJob(admin, network.jobID)
            XCTAssertEqual(networkJob.status, "succeeded", networkJob.steps?.first?.log ?? "")
            let moved = try await ssh("10.77.6.20", password: "Changed-pass-2")
            XCTAssertEqual(moved, "web-05")
            let vm = try admin.decode(API.VMBody.self, try await admin.request(.GET, "/api/v1/vms/\(created.vm.id)"))
            XCTAssertEqual(vm.ip, "10.77.6.20")
            let summary = try await fixture.client.findVirtualMachine(named: "web-05").summary()
            let guest = try GuestConfiguration(guestInfo: summary.guestInfo)
            XCTAssertEqual(guest.ipv4?.address, "10.77.6.20", "a rebuild keeps the new address")
            XCTAssertNil(guest.passwordHash, "vSphere readers find no password hash in the metadata")
            XCTAssertEqual(guest.authorizedKeys.count, 1, "a rebuild keeps the platform key")

            // An address the guest cannot reach from Flotilla: refused before anything changes.
            let outside = try await admin.request(
                .POST, "/api/v1/vms/\(created.vm.id)/network",
                json: VMs.NetworkInput(ip: "10.77.6.30", netmask: "24", gateway: "10.77.7.1"))
            XCTAssertEqual(outside.status, .badRequest)
        }
    }

    /// SPEC BEY-9 and review findings 1 and 9: a new VM is reached with the platform key only (its
    /// sshd log shows public-key logins and no password), its host key is pinned to the VM, the
    /// password hash leaves the metadata, key rotation moves it to a new key, and a network change
    /// to an address where another host key answers is refused with the record unchanged.
    func testGuestsAreReachedByKeyOnlyAndANetworkChangeRefusesAnotherHostKey() async throws {
        try await withLab { fixture in
            let admin = fixture.admin
            let created = try admin.decode(
                API.NewVMAnswer.self,
                try await admin.request(
                    .POST, "/api/v1/environments/\(fixture.environmentID)/vms", json: vmInput("web-07", "10.77.8.10")))
            let createJob = try await waitForJob(admin, created.jobID)
            XCTAssertEqual(createJob.status, "succeeded", createJob.steps?.first?.log ?? "")
            let machine = try await fixture.client.findVirtualMachine(named: "web-07")
            let guestFiles = Self.lab.guestsDirectory + "/" + machine.reference.value + "/upper"
            let sshdLog = { (try? String(contentsOfFile: guestFiles + "/var/log/sshd.log", encoding: .utf8)) ?? "" }
            XCTAssertTrue(sshdLog().contains("Accepted publickey for root from 10.77.0.1"), sshdLog())
            XCTAssertFalse(sshdLog().contains("password"), "the platform never offers the password:\n\(sshdLog())")

            // The host key is pinned to the VM; the metadata has the key and no password hash.
            let found = try await VM.find(created.vm.id, on: fixture.app.db)
            let record = try XCTUnwrap(found)
            let guestHostKey = try String(contentsOfFile: guestFiles + "/etc/ssh/ssh_host_ed25519_key.pub", encoding: .utf8)
            XCTAssertEqual(record.hostKey, guestHostKey.split(separator: " ").prefix(2).joined(separator: " "))
            let metadata = try GuestConfiguration(guestInfo: try await machine.summary().guestInfo)
            XCTAssertNil(metadata.passwordHash)
            let keys = PlatformKeys(database: fixture.app.db, secrets: fixture.app.flotilla.secrets)
            let oldKey = try await keys.active()
            XCTAssertEqual(metadata.authorizedKeys, [oldKey.publicKey])
            let oldPrivate = try keys.privateKey(oldKey)
            let listAnswer = try await admin.request(.GET, "/api/v1/ssh-keys")
            XCTAssertEqual(try admin.decode([SSHKeys.Row].self, listAnswer).map(\.fingerprint), [oldKey.fingerprint])
            XCTAssertFalse(listAnswer.body.string.contains("PRIVATE"), "only public halves are shown")

            // Rotation: the VM trusts the new key and no longer the old one.
            let rotation = try admin.decode(SSHKeysAPI.Rotation.self, try await admin.request(.POST, "/api/v1/ssh-keys/rotate"))
            let rotationJob = try await waitForJob(admin, rotation.jobID)
            XCTAssertEqual(rotationJob.status, "succeeded", rotationJob.steps?.map(\.log).joined(separator: "\n") ?? "")
            XCTAssertEqual(rotationJob.steps?.count, 2, "one step per VM, then the retirement")
            let newKey = try await keys.active()
            XCTAssertEqual(newKey.fingerprint, rotation.key.fingerprint)
            XCTAssertNotEqual(newKey.fingerprint, oldKey.fingerprint)
            func whoami(_ key: SSHPrivateKey) async throws -> String {
                let connection = try await SSHConnection.connect(
                    to: SSHTarget(host: "10.77.8.10", user: "root", authentication: .privateKey(key)), hostKeyStore: InMemoryHostKeyStore(),
                    options: SSHConnectionOptions(connectTimeout: .seconds(3), handshakeTimeout: .seconds(5)))
                defer { Task { await connection.close() } }
                return try await connection.run(Command("whoami"), timeout: .seconds(10)).output
            }
            let byNewKey = try await whoami(try keys.privateKey(newKey))
            XCTAssertEqual(byNewKey, "root\n")
            do {
                _ = try await whoami(oldPrivate)
                XCTFail("the old platform key still logs in")
            } catch let error as RemoteShellError {
                XCTAssertEqual(error.kind, .authentication)
            }
            let retired = try await PlatformSSHKey.find(oldKey.id, on: fixture.app.db)
            XCTAssertNotNil(retired?.retiredAt)
            XCTAssertNil(retired?.privateKeySealed, "a retired key's private half is erased")
            let rotatedMetadata = try GuestConfiguration(guestInfo: try await machine.summary().guestInfo)
            XCTAssertEqual(rotatedMetadata.authorizedKeys, [newKey.publicKey])

            // Another machine (even one that trusts the platform key) answers on the new address.
            let impostorConfiguration = GuestConfiguration(
                hostName: "impostor", ipv4: .init(address: "10.77.8.20", prefixLength: 16, gateway: "10.77.0.1", dns: []),
                authorizedKeys: [newKey.publicKey])
            let impostor = try await fixture.client.clone(
                try await fixture.client.findTemplate(named: "tpl-web"),
                CloneRequest(
                    name: "impostor", extraConfig: try impostorConfiguration.extraConfig()))
            try await impostor.powerOn()
            // Logging in to it also leaves the machine's ARP entry for the address pointing at it.
            var impostorUp = false
            for _ in 0..<40 where !impostorUp {
                if let connection = try? await SSHConnection.connect(
                    to: SSHTarget(host: "10.77.8.20", user: "root", authentication: .privateKey(try keys.privateKey(newKey))),
                    hostKeyStore: InMemoryHostKeyStore(), options: SSHConnectionOptions(connectTimeout: .seconds(2)))
                {
                    await connection.close()
                    impostorUp = true
                } else {
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
            XCTAssertTrue(impostorUp, "the impostor guest never answered")
            let impostorLog = Self.lab.guestsDirectory + "/" + impostor.reference.value + "/upper/var/log/sshd.log"
            let impostorLogBefore = (try? Data(contentsOf: URL(fileURLWithPath: impostorLog)).count) ?? 0

            let change = try admin.decode(
                API.JobReference.self,
                try await admin.request(
                    .POST, "/api/v1/vms/\(created.vm.id)/network",
                    json: VMs.NetworkInput(ip: "10.77.8.20", netmask: "16", gateway: "10.77.0.1", dns1: nil, dns2: nil)))
            let changeJob = try await waitForJob(admin, change.jobID)
            let log = changeJob.steps?.first?.log ?? ""
            XCTAssertEqual(changeJob.status, "failed", log)
            XCTAssertTrue(log.contains("another host key"), log)
            let impostorKey = try String(
                contentsOfFile: Self.lab.guestsDirectory + "/" + impostor.reference.value
                    + "/upper/etc/ssh/ssh_host_ed25519_key.pub", encoding: .utf8)
            let fingerprint = try SSHHostKey(openSSHPublicKey: impostorKey).fingerprint
            XCTAssertTrue(log.contains(fingerprint), "the error names the impostor's key: \(log)")
            XCTAssertTrue(log.contains(try SSHHostKey(openSSHPublicKey: try XCTUnwrap(record.hostKey)).fingerprint), log)
            let unchanged = try admin.decode(API.VMBody.self, try await admin.request(.GET, "/api/v1/vms/\(created.vm.id)"))
            XCTAssertEqual(unchanged.ip, "10.77.8.10", "the record keeps the old address")
            let impostorLogNow = (try? Data(contentsOf: URL(fileURLWithPath: impostorLog))) ?? Data()
            let impostorSaw = String(decoding: impostorLogNow.dropFirst(impostorLogBefore), as: UTF8.self)
            XCTAssertFalse(impostorSaw.contains("Accepted") || impostorSaw.contains("Failed"), "the impostor got no login:\n\(impostorSaw)")
        }
    }

    func testDeployABlueprintAndCloneTheEnvironment() async throws {
        try await withLab { fixture in
            let admin = fixture.admin
            let blueprint = """
                name: bp-1
                roles: { web: 3 }
                network: { range: 10.77.40.10-10.77.40.20, netmask: 255.255.0.0, gateway: 10.77.0.1, dns: [10.77.0.1] }
                password: shared
                """
            let unknown = try await admin.request(
                .POST, "/api/v1/blueprints/check",
                json: API.BlueprintText(blueprint: blueprint.replacingOccurrences(of: "web", with: "db")))
            XCTAssertEqual(unknown.status, .badRequest)
            XCTAssertTrue(unknown.body.string.contains("not a known role"))
            let planned = try admin.decode(
                [API.PlannedVM].self,
                try await admin.request(
                    .POST, "/api/v1/blueprints/check", json: API.BlueprintText(blueprint: blueprint)))
            XCTAssertEqual(planned.map(\.hostName), ["bp-1-web-01", "bp-1-web-02", "bp-1-web-03"])

            let answer = try await admin.request(
                .POST, "/api/v1/blueprints/deploy",
                json: Deployments.Input(
                    blueprint: blueprint, password: "Fleet-pass-1", passwordConfirmation: "Fleet-pass-1"))
            XCTAssertEqual(answer.status, .accepted, answer.body.string)
            let deployment = try admin.decode(Deployments.Deployment.self, answer)
            let job = try await waitForJob(admin, deployment.jobID)
            XCTAssertEqual(job.status, "succeeded", job.steps?.map(\.log).joined() ?? "")
            XCTAssertEqual(job.steps?.count, 3)
            for (index, vm) in planned.enumerated() {
                let name = try await ssh(vm.ip, password: "Fleet-pass-1")
                XCTAssertEqual(name, "bp-1-web-0\(index + 1)")
            }

            // Overlapping addresses are caught before anything is created.
            let overlap = try await admin.request(
                .POST, "/api/v1/blueprints/deploy",
                json: Deployments.Input(
                    blueprint: blueprint.replacingOccurrences(of: "bp-1", with: "bp-2"), password: "Fleet-pass-1",
                    passwordConfirmation: "Fleet-pass-1"))
            XCTAssertEqual(overlap.status, .conflict)

            let clone = try await admin.request(
                .POST, "/api/v1/environments/\(deployment.environmentID)/clone",
                json: API.CloneInput(
                    name: "bp-1-copy", range: "10.77.41.10-10.77.41.20", password: "Copy-pass-1", passwordConfirmation: "Copy-pass-1"))
            XCTAssertEqual(clone.status, .accepted, clone.body.string)
            let cloned = try admin.decode(Deployments.Deployment.self, clone)
            let cloneJob = try await waitForJob(admin, cloned.jobID)
            XCTAssertEqual(cloneJob.status, "succeeded")
            let copy = try await ssh("10.77.41.10", password: "Copy-pass-1")
            XCTAssertEqual(copy, "bp-1-copy-web-01")
        }
    }

    func testSyncNoticesVMsRemovedOutsideAndAdoptImportsExistingOnes() async throws {
        try await withLab(["FLOTILLA_SYNC_SECONDS": "1"]) { fixture in
            let admin = fixture.admin
            // A VM made outside Flotilla, the way another tool would clone it.
            let outside = GuestConfiguration(
                hostName: "legacy-web", ipv4: .init(address: "10.77.7.10", prefixLength: 16, gateway: "10.77.0.1", dns: []),
                passwordHash: CryptSHA512.hash(password: "Legacy-pass-1"))
            let template = try await fixture.client.findTemplate(named: "tpl-web")
            let legacy = try await fixture.client.clone(
                template,
                CloneRequest(
                    name: "legacy-web",
                    extraConfig: try outside.extraConfig() + [ExtraConfigEntry(key: "guestinfo.flotilla.role", value: "web")]))
            try await legacy.powerOn()

            let connection = try admin.decode([API.ConnectionBody].self, try await admin.request(.GET, "/api/v1/connections"))[0]
            let adopted = try await admin.request(
                .POST, "/api/v1/environments/\(fixture.environmentID)/adopt",
                json: VSphereImport.Input(
                    connectionID: connection.id, names: ["legacy-web"], role: "web", password: "Legacy-pass-1"))
            XCTAssertEqual(adopted.status, .created, adopted.body.string)
            let vm = try admin.decode([API.VMBody].self, adopted)[0]
            XCTAssertEqual(vm.ip, "10.77.7.10")
            XCTAssertEqual(vm.status, "ready")
            let again = try await admin.request(
                .POST, "/api/v1/environments/\(fixture.environmentID)/adopt",
                json: VSphereImport.Input(
                    connectionID: connection.id, names: ["legacy-web"], role: "web", password: "Legacy-pass-1"))
            XCTAssertEqual(again.status, .conflict)

            // Its services are read over SSH with the adopted password.
            var live: [LiveStatus.LiveVM] = []
            for _ in 0..<20 {
                live = try admin.decode(
                    [LiveStatus.LiveVM].self, try await admin.request(.GET, "/api/v1/environments/\(fixture.environmentID)/live"))
                if live.first?.services != nil { break }
                try await Task.sleep(for: .milliseconds(500))
            }
            XCTAssertEqual(live.first?.powerState, "poweredOn")
            XCTAssertEqual(live.first?.services?.map(\.name), ["sshd"], live.first?.servicesError ?? "")
            XCTAssertEqual(live.first?.services?.first?.running, true)

            // Removed outside Flotilla: marked missing, not dropped, and logged.
            try await legacy.powerOff()
            try await legacy.destroy()
            var status = ""
            for _ in 0..<20 where status != "missing" {
                try await Task.sleep(for: .milliseconds(500))
                status = try admin.decode(API.VMBody.self, try await admin.request(.GET, "/api/v1/vms/\(vm.id)")).status
            }
            XCTAssertEqual(status, "missing")
            let logged = try await LogEntry.query(on: fixture.app.db).filter(\.$action == "vm.missing").filter(\.$vmName == "legacy-web")
                .count()
            XCTAssertEqual(logged, 1)
        }
    }

    func testVSphereFaultsAndAVanishingVSphereFailTheJobCleanly() async throws {
        try await withLab(["FLOTILLA_GUEST_BOOT_SECONDS": "30"]) { fixture in
            let admin = fixture.admin
            let path = "/api/v1/environments/\(fixture.environmentID)/vms"
            // vSphere refuses the clone: the typed fault reaches the job, the log and the VM's record.
            let refused = try admin.decode(
                API.NewVMAnswer.self, try await admin.request(.POST, path, json: vmInput("bad-01", "10.77.8.10")))
            let job = try await waitForJob(admin, refused.jobID)
            XCTAssertEqual(job.status, "failed")
            XCTAssertTrue(job.steps?.first?.log.contains("InsufficientResourcesFault") ?? false, job.steps?.first?.log ?? "")
            let vm = try admin.decode(API.VMBody.self, try await admin.request(.GET, "/api/v1/vms/\(refused.vm.id)"))
            XCTAssertEqual(vm.status, "failed")
            XCTAssertNil(vm.vsphereReference, "nothing was made on vSphere")
            let names = try await fixture.client.listVirtualMachines().map(\.name)
            XCTAssertFalse(names.contains("bad-01"))
            let errors = try await LogEntry.query(on: fixture.app.db).filter(\.$kind == "error").filter(\.$vmName == "bad-01").all()
            XCTAssertEqual(errors.count, 1)
            XCTAssertTrue(errors.first?.details.contains("InsufficientResourcesFault") ?? false)

            // vCenter goes away while a VM is being made (its guest never reports, so the job is
            // still waiting): the job ends failed with the reason, within its own deadline.
            let lost = try admin.decode(
                API.NewVMAnswer.self, try await admin.request(.POST, path, json: vmInput("lost-01", "10.99.0.20", gateway: "10.99.0.1")))
            for _ in 0..<40 {
                let current = try admin.decode(API.JobBody.self, try await admin.request(.GET, "/api/v1/jobs/\(lost.jobID)"))
                if current.steps?.first?.log.contains("powering on") == true { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            kill(fixture.vcsimPID, SIGKILL)
            let started = ContinuousClock.now
            let lostJob = try await waitForJob(admin, lost.jobID, timeout: .seconds(60))
            XCTAssertLessThan(ContinuousClock.now - started, .seconds(45))
            XCTAssertEqual(lostJob.status, "failed")
            let record = try admin.decode(API.VMBody.self, try await admin.request(.GET, "/api/v1/vms/\(lost.vm.id)"))
            XCTAssertEqual(record.status, "failed")
            XCTAssertTrue(record.statusReason?.contains("could not be destroyed") ?? false, record.statusReason ?? "")
        }
    }
}
