import Foundation
import Lab
import RemoteShell
import VSphere
import XCTest

/// End-to-end: VMs cloned in vcsim become guests that boot, answer and stop like VMs.
/// Runs as root; takes over the machine's lab (flt-* namespaces and links) while it runs.
final class LabGuestTests: XCTestCase {
    private var lab: LabHarness!

    override func setUp() async throws {
        lab = try await LabHarness.start()
    }

    override func tearDown() async throws {
        try await lab?.tearDown()
        lab = nil
    }

    func testClonedVMBootsAnswersPingAndSSHAndReportsItsAddress() async throws {
        let started = ContinuousClock.now
        let vm = try await lab.createGuest(name: "web-01", role: "web", address: "10.77.1.10")
        let answered = await eventually(within: .seconds(5)) { await ping("10.77.1.10") }
        let pingUp = ContinuousClock.now - started
        XCTAssertTrue(answered, "guest never answered ping")
        let sshUp = await eventually(within: .seconds(5)) { await lab.canSSH("10.77.1.10") }
        XCTAssertTrue(sshUp, "guest never accepted SSH with the metadata password")
        print("time to up after clone + power-on: ping \(pingUp), ssh \(ContinuousClock.now - started)")
        XCTAssertLessThan(pingUp, .seconds(3), "guest should be up about 2 s after power-on")

        let identity = try await lab.ssh("10.77.1.10", .script("hostname; ip -4 -o addr show dev eth0; cat /etc/network/interfaces"))
        XCTAssertTrue(identity.output.hasPrefix("web-01\n"), identity.output)
        XCTAssertTrue(identity.output.contains("inet 10.77.1.10/16"), identity.output)
        XCTAssertTrue(identity.output.contains("address 10.77.1.10/16"), identity.output)

        // Only the right password opens it.
        do {
            _ = try await lab.connect("10.77.1.10", password: "wrong")
            XCTFail("a wrong password was accepted")
        } catch let error as RemoteShellError {
            XCTAssertEqual(error.kind, .authentication)
        }

        // sshd: raised limits for fan-out, and public keys work as well as the password.
        let limits = try await lab.ssh("10.77.1.10", .script("sshd -T | grep -E '^(maxstartups|maxsessions) '"))
        XCTAssertEqual(limits.output, "maxsessions 64\nmaxstartups 100:30:200\n")
        let keyFile = FileManager.default.temporaryDirectory.appendingPathComponent("lab-test-key-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: keyFile)
            try? FileManager.default.removeItem(atPath: keyFile + ".pub")
        }
        let generated = try await runLocal("/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keyFile)
        XCTAssertEqual(generated.status, 0)
        let key = try SSHPrivateKey(contentsOfFile: keyFile)
        let installed = try await lab.ssh(
            "10.77.1.10",
            .script(
                #"mkdir -p /root/.ssh && printf '%s\n' "$1" >> /root/.ssh/authorized_keys"#, arguments: [key.publicKeyLine]))
        XCTAssertTrue(installed.succeeded, installed.errorOutput)
        let byKey = try await SSHConnection.connect(
            to: SSHTarget(host: "10.77.1.10", user: "root", authentication: .privateKey(key)), hostKeyStore: InMemoryHostKeyStore())
        let whoami = try await byKey.run(RemoteShell.Command("whoami"))
        await byKey.close()
        XCTAssertEqual(whoami.output, "root\n")

        let reported = try await eventually(within: .seconds(3)) {
            let summary = try await lab.client.summary(of: vm.reference)
            return summary.guestIPAddress == "10.77.1.10" && summary.guestHostName == "web-01"
        }
        XCTAssertTrue(reported, "vcsim never got the guest's address and host name")
    }

    /// cloud-init's ssh_authorized_keys and sudo, as Flotilla sends them (SPEC BEY-9): a non-root
    /// user logs in with the key alone (no password in the metadata), runs root's commands with
    /// `sudo -n`, and the guest's sshd log shows the public-key login. A reboot keeps it all.
    func testMetadataKeyLogsInAndANonRootUserHasSudo() async throws {
        let key = SSHPrivateKey.generateEd25519()
        let vm = try await lab.createGuest(
            name: "web-05", role: "web", address: "10.77.1.15", password: nil, user: "deploy",
            authorizedKeys: [key.publicKeyLine + " flotilla"], sudo: GuestConfiguration.passwordlessSudo)
        func loginByKey() async -> SSHConnection? {
            try? await lab.connect("10.77.1.15", user: "deploy", authentication: .privateKey(key))
        }
        let up = await eventually(within: .seconds(8)) {
            guard let connection = await loginByKey() else { return false }
            await connection.close()
            return true
        }
        XCTAssertTrue(up, "the metadata key never logged in")
        let login = await loginByKey()
        let connection = try XCTUnwrap(login)
        let identity = try await connection.run(.script("id -un; sudo -n id -u; stat -c '%a %U' ~/.ssh ~/.ssh/authorized_keys"))
        XCTAssertEqual(identity.output, "deploy\n0\n700 deploy\n600 deploy\n", identity.errorOutput)
        await connection.close()
        XCTAssertTrue(lab.sshdLog(vm).contains("Accepted publickey for deploy from 10.77.0.1"), lab.sshdLog(vm))

        // No password was given: none logs in, and another key does not either.
        do {
            _ = try await lab.connect("10.77.1.15", user: "deploy", authentication: .password("Lab-pass-1"))
            XCTFail("a password logged in to a user that has none")
        } catch let error as RemoteShellError {
            XCTAssertEqual(error.kind, .authentication)
        }
        do {
            _ = try await lab.connect("10.77.1.15", user: "deploy", authentication: .privateKey(.generateEd25519()))
            XCTFail("a key that is not in the metadata logged in")
        } catch let error as RemoteShellError {
            XCTAssertEqual(error.kind, .authentication)
        }

        // A reset boots the guest again from the same files: the key still logs in.
        try await vm.reset()
        try await Task.sleep(for: .seconds(1))
        let back = await eventually(within: .seconds(8)) {
            guard let connection = await loginByKey() else { return false }
            let result = try? await connection.run(.script("sudo -n true"), timeout: .seconds(5))
            await connection.close()
            return result?.succeeded == true
        }
        XCTAssertTrue(back, "the key or sudo did not survive a reset")
    }

    /// Once the guest applied its password, the lab keeps no copy of the hash; a guest whose
    /// metadata no longer carries it (Flotilla removes it) keeps its password across reboots.
    func testPasswordHashIsNotKeptAndThePasswordSurvivesItsRemovalFromMetadata() async throws {
        let vm = try await lab.createGuest(name: "web-06", role: "web", address: "10.77.1.16")
        let up = await eventually(within: .seconds(8)) { await lab.canSSH("10.77.1.16") }
        XCTAssertTrue(up)
        let seed = LabHarness.configuration.guestsDirectory + "/" + vm.reference.value + "/seed"
        XCTAssertFalse(FileManager.default.fileExists(atPath: seed + "/password.hash"))
        try await vm.reconfigure(
            extraConfig: try GuestConfiguration(
                hostName: "web-06", ipv4: .init(address: "10.77.1.16", prefixLength: 16, gateway: "10.77.0.1", dns: ["10.77.0.1"])
            ).extraConfig())
        try await vm.reset()
        try await Task.sleep(for: .seconds(1))
        let back = await eventually(within: .seconds(8)) { await lab.canSSH("10.77.1.16") }
        XCTAssertTrue(back, "the password set on first boot must survive a boot from metadata without it")
    }

    func testGuestChangesItsOwnAddressWithIfupdown() async throws {
        let vm = try await lab.createGuest(name: "web-02", role: "web", address: "10.77.1.11")
        let up = await eventually(within: .seconds(5)) { await lab.canSSH("10.77.1.11") }
        XCTAssertTrue(up)
        // What VM-10 does on a VM: ifdown, edit, ifup. The connection drops with the old address.
        let connection = try await lab.connect("10.77.1.11")
        _ = try? await connection.run(
            .script(
                """
                (ifdown eth0 && sed -i 's#10.77.1.11/16#10.77.1.12/16#' /etc/network/interfaces && ifup eth0) \
                  >/dev/null 2>&1 </dev/null &
                """), timeout: .seconds(3))
        await connection.close()
        let moved = await eventually(within: .seconds(5)) { await lab.canSSH("10.77.1.12") }
        XCTAssertTrue(moved, "guest not reachable on its new address")
        let oldGone = await ping("10.77.1.11")
        XCTAssertFalse(oldGone, "old address still answers")
        let reported = try await eventually(within: .seconds(5)) {
            try await lab.client.summary(of: vm.reference).guestIPAddress == "10.77.1.12"
        }
        XCTAssertTrue(reported, "the new address was not reported to vcsim")
    }

    func testGuestsSeeNeitherEachOthersFilesNorProcesses() async throws {
        _ = try await lab.createGuest(name: "cache-01", role: "redis", address: "10.77.1.21")
        _ = try await lab.createGuest(name: "db-01", role: "mysql", address: "10.77.1.22")
        for address in ["10.77.1.21", "10.77.1.22"] {
            let up = await eventually(within: .seconds(5)) { await lab.canSSH(address) }
            XCTAssertTrue(up, "\(address) never came up")
        }
        let created = try await lab.ssh(
            "10.77.1.21",
            .script(
                """
                echo secret > /root/only-in-a && echo guest > /etc/flotilla-lab-test-marker
                setsid sleep 4242 >/dev/null 2>&1 </dev/null &
                pgrep -x sleep >/dev/null
                """))
        XCTAssertTrue(created.succeeded, created.errorOutput)

        let other = try await lab.ssh(
            "10.77.1.22",
            .script(
                """
                hostname; test -e /root/only-in-a && echo FILE-VISIBLE; pgrep -f 'slee[p] 4242' && echo PROCESS-VISIBLE
                pgrep -x redis-server && echo REDIS-VISIBLE; pgrep -x mysqld >/dev/null && echo own-mysqld; true
                """))
        XCTAssertEqual(other.output, "db-01\nown-mysqld\n")
        // Root in a guest writes only into its own layer, never the machine's files.
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/etc/flotilla-lab-test-marker"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/root/only-in-a"))
        let escape = try await lab.ssh("10.77.1.21", .script("mount -t tmpfs none /mnt 2>&1 || echo refused"))
        XCTAssertTrue(escape.output.hasSuffix("refused\n"), escape.output)
        // The processes of guest A are not the machine's either... but the machine sees them all.
        let own = try await lab.ssh("10.77.1.21", .script("ps -e -o comm= | sort -u | tr '\\n' ' '"))
        XCTAssertFalse(own.output.contains("vcsim"), own.output)

        // Each guest has its own ed25519 host key (never the machine's).
        var hostKeys: [String] = []
        for address in ["10.77.1.21", "10.77.1.22"] {
            let store = InMemoryHostKeyStore()
            let connection = try await SSHConnection.connect(
                to: SSHTarget(host: address, user: "root", authentication: .password("Lab-pass-1")), hostKeyStore: store)
            await connection.close()
            let pinned = await store.pinnedKey(for: address)
            hostKeys.append(try XCTUnwrap(pinned).openSSHPublicKey)
        }
        let machineKey = (try? String(contentsOfFile: "/etc/ssh/ssh_host_ed25519_key.pub", encoding: .utf8)) ?? ""
        XCTAssertTrue(hostKeys.allSatisfy { $0.hasPrefix("ssh-ed25519 ") }, "\(hostKeys)")
        XCTAssertNotEqual(hostKeys[0], hostKeys[1])
        XCTAssertFalse(hostKeys.contains { machineKey.contains($0.split(separator: " ")[1]) }, "a guest uses the machine's host key")

        // Each role's services answer on their real ports.
        let redis = try await tcpExchange("10.77.1.21", port: 6379, "PING\r\n")
        XCTAssertEqual(redis.output, "+PONG\r\n")
        // MariaDB (the real server) needs some seconds after the guest's boot on a busy machine.
        let mysqlListens = await eventually(within: .seconds(30)) {
            (try? await tcpExchange("10.77.1.22", port: 3306, ""))?.status == 0
        }
        XCTAssertTrue(mysqlListens, "nothing listens on 3306")
    }

    func testGuestFollowsPowerOffOnResetAndDestroy() async throws {
        let vm = try await lab.createGuest(name: "web-03", role: "web", address: "10.77.1.30")
        let up = await eventually(within: .seconds(5)) { await lab.canSSH("10.77.1.30") }
        XCTAssertTrue(up)
        let prepared = try await lab.ssh(
            "10.77.1.30",
            .script(
                """
                echo kept > /root/kept && setsid sleep 4343 >/dev/null 2>&1 </dev/null & sleep 0.1; pgrep -f 'slee[p] 4343' >/dev/null
                """))
        XCTAssertTrue(prepared.succeeded)

        try await vm.powerOff()
        let down = await eventually(within: .seconds(3)) { await !ping("10.77.1.30") }
        XCTAssertTrue(down, "a powered-off guest still answers ping")
        let sshAfterOff = await lab.canSSH("10.77.1.30")
        XCTAssertFalse(sshAfterOff, "a powered-off guest still accepts SSH")

        try await vm.powerOn()
        let back = await eventually(within: .seconds(10)) { await lab.canSSH("10.77.1.30") }
        XCTAssertTrue(back, "guest did not come back after power-on")
        let afterBoot = try await lab.ssh("10.77.1.30", .script("cat /root/kept; pgrep -f 'slee[p] 4343' || echo no-old-process"))
        XCTAssertEqual(afterBoot.output, "kept\nno-old-process\n")

        _ = try await lab.ssh("10.77.1.30", .script("setsid sleep 4444 >/dev/null 2>&1 </dev/null &"))
        try await vm.reset()
        // An attempt that meets the old guest while it is killed can take a handshake timeout (5 s).
        // A login can also reach the old guest just before it is killed: that attempt is "not yet".
        let restarted = await eventually(within: .seconds(15)) {
            guard await lab.canSSH("10.77.1.30") else { return false }
            return (try? await lab.ssh("10.77.1.30", .script("pgrep -f 'slee[p] 4444' || echo gone")))?.output == "gone\n"
        }
        XCTAssertTrue(restarted, "reset did not restart the guest's processes")

        try await vm.suspend()
        let suspended = await eventually(within: .seconds(3)) { await !ping("10.77.1.30") }
        XCTAssertTrue(suspended, "a suspended guest still answers ping")

        try await vm.powerOff()
        try await vm.destroy()
        let directory = LabHarness.configuration.stateDirectory + "/guests/" + vm.reference.value
        let removed = try await eventually(within: .seconds(3)) {
            try await !lab.namespaceExists(vm) && !FileManager.default.fileExists(atPath: directory)
        }
        XCTAssertTrue(removed, "the destroyed VM's guest namespace or files are still there")
    }

    func testPreCreatedVMsAreSpreadOverTheRoles() async throws {
        let inventory = VSphereLabInventory(client: lab.client, labNetwork: LabHarness.configuration.network, demoPassword: "Lab-pass-1")
        try await inventory.createGuests(count: 3, roles: ["web", "redis", "mysql"], network: LabHarness.configuration.network)
        let names = Set(try await lab.client.listVirtualMachines().filter { !$0.isTemplate }.map(\.name))
        XCTAssertEqual(names, ["lab-web-1", "lab-redis-1", "lab-mysql-1"])
        for address in ["10.77.0.10", "10.77.0.11", "10.77.0.12"] {
            let up = await eventually(within: .seconds(5)) { await lab.canSSH(address) }
            XCTAssertTrue(up, "pre-created guest \(address) never came up")
        }
        let redis = try await tcpExchange("10.77.0.11", port: 6379, "PING\r\n")
        XCTAssertEqual(redis.output, "+PONG\r\n")
    }

    func testGuestWhoseProcessesDieWhilePoweredOnBootsAgain() async throws {
        let vm = try await lab.createGuest(name: "web-08", role: "web", address: "10.77.1.90")
        let up = await eventually(within: .seconds(5)) { await lab.canSSH("10.77.1.90") }
        XCTAssertTrue(up)
        let pids = try await runLocal("/usr/sbin/ip", "netns", "pids", "flt-\(vm.reference.value)").output
            .split(separator: "\n").compactMap { Int32($0) }
        XCTAssertFalse(pids.isEmpty)
        for pid in pids { kill(pid, SIGKILL) }
        let back = await eventually(within: .seconds(12)) { await lab.canSSH("10.77.1.90") }
        XCTAssertTrue(back, "a guest that died while its VM is on was not booted again")
    }

    func testMetadataOutsideTheLabNetworkIsRefused() async throws {
        let outside = try await lab.createGuest(name: "web-04", role: "web", address: "192.168.77.10", prefixLength: 24)
        let tooWide = try await lab.createGuest(name: "web-05", role: "web", address: "10.77.1.50", prefixLength: 8)
        let inside = try await lab.createGuest(name: "web-06", role: "web", address: "10.77.1.51")
        let up = await eventually(within: .seconds(5)) { await ping("10.77.1.51") }
        XCTAssertTrue(up)
        let outsideMade = try await lab.namespaceExists(outside)
        let tooWideMade = try await lab.namespaceExists(tooWide)
        XCTAssertFalse(outsideMade, "a guest was made for an address outside the lab network")
        XCTAssertFalse(tooWideMade, "a guest was made for a prefix wider than the lab network")
        _ = inside
        // Nothing leaves the machine: the bridge forwards nothing, and there is no NAT.
        let forwarding = try String(contentsOfFile: "/proc/sys/net/ipv4/conf/flt-br0/forwarding", encoding: .utf8)
        XCTAssertEqual(forwarding, "0\n")
    }

    func testRestartedSupervisorAdoptsRunningGuests() async throws {
        let vm = try await lab.createGuest(name: "web-07", role: "web", address: "10.77.1.70")
        let up = await eventually(within: .seconds(5)) { await lab.canSSH("10.77.1.70") }
        XCTAssertTrue(up)
        _ = try await lab.ssh("10.77.1.70", .script("setsid sleep 4545 >/dev/null 2>&1 </dev/null &"))
        // The supervisor goes away; the guest and vcsim do not.
        await lab.stopFollowing()
        let stillUp = await lab.canSSH("10.77.1.70")
        XCTAssertTrue(stillUp)

        let successor = LabSupervisor(configuration: LabHarness.configuration)
        try await successor.start()
        let follower = Task { await successor.follow() }
        do {
            let reused = await successor.vcsim?.pid
            XCTAssertEqual(reused, lab.vcsim.pid, "the restarted supervisor started a second vcsim")
            // Adopted, not rebooted: the guest's processes survive.
            try await Task.sleep(for: .seconds(1))
            let survived = try await lab.ssh("10.77.1.70", .script("pgrep -f 'slee[p] 4545' >/dev/null && echo alive"))
            XCTAssertEqual(survived.output, "alive\n")
            try await vm.powerOff()
            let down = await eventually(within: .seconds(3)) { await !ping("10.77.1.70") }
            XCTAssertTrue(down, "the restarted supervisor does not follow the adopted guest")
        } catch {
            follower.cancel()
            await follower.value
            await successor.close()
            throw error
        }
        follower.cancel()
        await follower.value
        await successor.close()
    }

    func testLabDownLeavesNothingBehind() async throws {
        _ = try await lab.createGuest(name: "cache-02", role: "redis", address: "10.77.1.80")
        let up = await eventually(within: .seconds(5)) { await lab.canSSH("10.77.1.80") }
        XCTAssertTrue(up)
        let vcsimPid = lab.vcsim.pid
        await lab.disconnect()
        try await Lab.down(LabHarness.configuration)

        let namespaces = try await runLocal("/usr/sbin/ip", "netns", "list").output
        XCTAssertFalse(namespaces.contains("flt-"), "namespaces left: \(namespaces)")
        let links = try await runLocal("/usr/sbin/ip", "-o", "link", "show").output
        XCTAssertFalse(links.contains("flt-"), "links left: \(links)")
        let state = LabHarness.configuration.stateDirectory
        XCTAssertFalse(FileManager.default.fileExists(atPath: state), "state directory left")
        var leftovers: [String] = []
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc") where Int(entry) != nil {
            let mountInfo = (try? String(contentsOfFile: "/proc/\(entry)/mountinfo", encoding: .utf8)) ?? ""
            let commandLine = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(entry)/cmdline"))) ?? Data()
            let command = String(decoding: commandLine, as: UTF8.self).replacingOccurrences(of: "\0", with: " ")
            if mountInfo.contains(state) || command.contains("guest-init.sh") || command.contains(state) {
                leftovers.append("\(entry): \(command)")
            }
        }
        XCTAssertEqual(leftovers, [], "processes or mounts left")
        let vcsimStat = (try? String(contentsOfFile: "/proc/\(vcsimPid)/stat", encoding: .utf8)) ?? ""
        XCTAssertTrue(vcsimStat.isEmpty || vcsimStat.contains(") Z "), "vcsim still runs")
        let answers = await ping("10.77.1.80")
        XCTAssertFalse(answers, "a guest still answers after lab down")
    }
}
