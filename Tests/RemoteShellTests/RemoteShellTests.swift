import Foundation
import RemoteShell
import XCTest

final class RemoteShellTests: XCTestCase {
    private func passwordTarget(_ server: TestSSHServer, password: String = TestSSHServer.password) -> SSHTarget {
        SSHTarget(host: "127.0.0.1", port: server.port, user: TestSSHServer.user, authentication: .password(password))
    }

    private func connect(
        _ server: TestSSHServer, store: any HostKeyStore = InMemoryHostKeyStore(), options: SSHConnectionOptions = .init()
    )
        async throws -> SSHConnection
    {
        try await SSHConnection.connect(to: passwordTarget(server), hostKeyStore: store, options: options)
    }

    /// Runs `body`, expecting a RemoteShellError, and returns it with the time it took.
    private func expectError(
        _ body: () async throws -> Void, file: StaticString = #filePath, line: UInt = #line
    )
        async -> (RemoteShellError?, Duration)
    {
        let start = ContinuousClock.now
        do {
            try await body()
            XCTFail("expected a RemoteShellError", file: file, line: line)
            return (nil, .now - start)
        } catch let error as RemoteShellError {
            return (error, .now - start)
        } catch {
            XCTFail("expected a RemoteShellError, got \(type(of: error)): \(error)", file: file, line: line)
            return (nil, .now - start)
        }
    }

    /// How many `sleep` processes of the test user are alive; killed ones may linger as zombies
    /// when the container's PID 1 does not reap orphans, so those are not counted. Reads /proc
    /// directly, so that minimal images without procps work too.
    private func runningSleepProcesses(_ connection: SSHConnection) async throws -> Int {
        let result = try await connection.run(
            Command.script(
                #"""
                count=0
                for status in /proc/[0-9]*/status; do
                    fields=$(cat "$status" 2>/dev/null) || continue
                    printf '%s\n' "$fields" | grep -q '^Name:[[:space:]]*sleep$' || continue
                    printf '%s\n' "$fields" | grep -q "^Uid:[[:space:]]*$1[[:space:]]" || continue
                    printf '%s\n' "$fields" | grep -q '^State:[[:space:]]*Z' && continue
                    count=$((count + 1))
                done
                echo "$count"
                """#,
                arguments: [String(TestSSHServer.userID)]
            )
        )
        return Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    func testPasswordAuthenticationRunsCommand() async throws {
        let server = try TestSSHServer()
        let connection = try await connect(server)
        let result = try await connection.run(Command("id", "-un"))
        XCTAssertEqual(result.output, TestSSHServer.user + "\n")
        XCTAssertEqual(result.exitStatus, 0)
        XCTAssertTrue(result.succeeded)
        await connection.close()
        XCTAssertFalse(connection.isActive)
    }

    func testPrivateKeyAuthenticationWithEd25519AndECDSAKeys() async throws {
        let server = try TestSSHServer()
        for path in [server.clientKeyPath, server.clientECDSAKeyPath] {
            let key = try SSHPrivateKey(contentsOfFile: path)
            XCTAssertEqual(
                key.publicKeyLine,
                try String(contentsOfFile: path + ".pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " "))
            let target = SSHTarget(host: "127.0.0.1", port: server.port, user: TestSSHServer.user, authentication: .privateKey(key))
            let connection = try await SSHConnection.connect(to: target, hostKeyStore: InMemoryHostKeyStore())
            let result = try await connection.run(Command("id", "-un"))
            XCTAssertEqual(result.output, TestSSHServer.user + "\n", path)
            await connection.close()
        }
    }

    func testWrongPasswordFailsFastWithAuthenticationStage() async throws {
        let server = try TestSSHServer()
        let target = passwordTarget(server, password: "wrong")
        let (error, elapsed) = await expectError {
            _ = try await SSHConnection.connect(to: target, hostKeyStore: InMemoryHostKeyStore())
        }
        XCTAssertEqual(error?.kind, .authentication)
        XCTAssertEqual(error?.host, "[127.0.0.1]:\(server.port)")
        XCTAssertTrue(
            error?.message.contains("refused password authentication for user \(TestSSHServer.user)") ?? false,
            "\(String(describing: error))")
        XCTAssertLessThan(elapsed, .seconds(10))
    }

    func testUnauthorizedKeyIsRefused() async throws {
        let server = try TestSSHServer()
        let otherKeyPath = server.directory.appendingPathComponent("unauthorized").path
        try runTool("/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", otherKeyPath)
        let target = SSHTarget(
            host: "127.0.0.1", port: server.port, user: TestSSHServer.user,
            authentication: .privateKey(try SSHPrivateKey(contentsOfFile: otherKeyPath))
        )
        let (error, _) = await expectError { _ = try await SSHConnection.connect(to: target, hostKeyStore: InMemoryHostKeyStore()) }
        XCTAssertEqual(error?.kind, .authentication)
    }

    func testHostKeyIsPinnedOnFirstUseAndAChangedKeyIsRefused() async throws {
        let server = try TestSSHServer()
        let store = InMemoryHostKeyStore()
        let hostKeyName = "[127.0.0.1]:\(server.port)"
        let firstFingerprint = try server.hostKeyFingerprint()

        let connection = try await connect(server, store: store)
        await connection.close()
        let pinned = await store.pinnedKey(for: hostKeyName)
        XCTAssertEqual(pinned?.fingerprint, firstFingerprint)
        try await connect(server, store: store).close()

        try server.restartWithNewHostKey()
        let secondFingerprint = try server.hostKeyFingerprint()
        XCTAssertNotEqual(firstFingerprint, secondFingerprint)
        let (error, elapsed) = await expectError { _ = try await self.connect(server, store: store) }
        XCTAssertEqual(error?.kind, .hostKeyMismatch)
        XCTAssertEqual(error?.host, hostKeyName)
        XCTAssertTrue(error?.message.contains(firstFingerprint) ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains(secondFingerprint) ?? false, "\(String(describing: error))")
        XCTAssertLessThan(elapsed, .seconds(10))

        await store.forget(host: hostKeyName)
        try await connect(server, store: store).close()
        let repinned = await store.pinnedKey(for: hostKeyName)
        XCTAssertEqual(repinned?.fingerprint, secondFingerprint)
    }

    func testFileHostKeyStorePersistsPinsAndDetectsMismatch() async throws {
        let server = try TestSSHServer()
        let path = server.directory.appendingPathComponent("known_hosts").path
        try "# kept comment\nother.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBMCdFYcbgWrUuWI0Ck5fX4QmySZJKWTeo1gVNlLa4NB\n"
            .write(toFile: path, atomically: true, encoding: .utf8)

        try await connect(server, store: FileHostKeyStore(path: path)).close()
        let contents = try String(contentsOfFile: path, encoding: .utf8)
        let hostKeyLine = try String(contentsOfFile: server.hostKeyPath + ".pub", encoding: .utf8).split(separator: " ").prefix(2).joined(
            separator: " ")
        XCTAssertTrue(contents.hasPrefix("# kept comment\nother.example "), contents)
        XCTAssertTrue(contents.contains("[127.0.0.1]:\(server.port) \(hostKeyLine)\n"), contents)

        try server.restartWithNewHostKey()
        let (error, _) = await expectError { _ = try await self.connect(server, store: FileHostKeyStore(path: path)) }
        XCTAssertEqual(error?.kind, .hostKeyMismatch)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), contents, "a mismatch must not change the store")
    }

    func testExitStatusAndStandardErrorAreReported() async throws {
        let server = try TestSSHServer()
        let connection = try await connect(server)
        let result = try await connection.run(Command.script(#"echo out; echo "err $1" >&2; exit 3"#, arguments: ["x"]))
        XCTAssertEqual(result.exitStatus, 3)
        XCTAssertFalse(result.succeeded)
        XCTAssertEqual(result.output, "out\n")
        XCTAssertEqual(result.errorOutput, "err x\n")
        let missing = try await connection.run(Command("/nonexistent/tool"))
        XCTAssertEqual(missing.exitStatus, 127)
        await connection.close()
    }

    func testCommandTimeoutFailsAndConnectionStaysUsable() async throws {
        let server = try TestSSHServer()
        let connection = try await connect(server)
        let (error, elapsed) = await expectError { _ = try await connection.run(Command("sleep", "10"), timeout: .seconds(1)) }
        XCTAssertEqual(error?.kind, .timeout)
        XCTAssertTrue(error?.message.contains("sleep 10") ?? false)
        XCTAssertLessThan(elapsed, .seconds(3))
        try await Task.sleep(for: .milliseconds(300))
        let sleeping = try await runningSleepProcesses(connection)
        XCTAssertEqual(sleeping, 0, "the timed-out command should have been killed")
        let afterTimeout = try await connection.run(Command("echo", "still here"))
        XCTAssertEqual(afterTimeout.output, "still here\n")
        await connection.close()
    }

    func testCancellingTheCallerKillsTheCommand() async throws {
        let server = try TestSSHServer()
        let connection = try await connect(server)
        let start = ContinuousClock.now
        let running = Task { try await connection.run(Command("sleep", "10")) }
        var sleepStarted = false
        for _ in 0..<50 where !sleepStarted {
            sleepStarted = try await runningSleepProcesses(connection) > 0
            if !sleepStarted { try await Task.sleep(for: .milliseconds(100)) }
        }
        XCTAssertTrue(sleepStarted, "the command should be running before it is cancelled")
        running.cancel()
        do {
            _ = try await running.value
            XCTFail("expected cancellation")
        } catch {
            XCTAssertTrue(error is CancellationError, "\(error)")
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(3))
        try await Task.sleep(for: .milliseconds(300))
        let sleeping = try await runningSleepProcesses(connection)
        XCTAssertEqual(sleeping, 0, "the cancelled command should have been killed")
        await connection.close()
    }

    func testConnectTimeoutWhenSYNsAreDropped() async throws {
        let listener = try LoopbackListener(backlog: 0)
        listener.fillAcceptQueue()
        let target = SSHTarget(host: "127.0.0.1", port: listener.port, user: "nobody", authentication: .password("x"))
        let (error, elapsed) = await expectError {
            _ = try await SSHConnection.connect(
                to: target, hostKeyStore: InMemoryHostKeyStore(), options: .init(connectTimeout: .seconds(1)))
        }
        XCTAssertEqual(error?.kind, .timeout)
        XCTAssertTrue(error?.message.contains("TCP connect") ?? false, "\(String(describing: error))")
        XCTAssertLessThan(elapsed, .seconds(3))
    }

    func testHandshakeTimeoutWhenServerNeverSpeaks() async throws {
        let listener = try LoopbackListener(backlog: 16)
        let target = SSHTarget(host: "127.0.0.1", port: listener.port, user: "nobody", authentication: .password("x"))
        let (error, elapsed) = await expectError {
            _ = try await SSHConnection.connect(
                to: target, hostKeyStore: InMemoryHostKeyStore(), options: .init(handshakeTimeout: .seconds(1)))
        }
        XCTAssertEqual(error?.kind, .timeout)
        XCTAssertTrue(error?.message.contains("handshake") ?? false, "\(String(describing: error))")
        XCTAssertLessThan(elapsed, .seconds(3))
    }

    func testConnectionRefusedIsAConnectError() async throws {
        let port = try freeLoopbackPort()
        let target = SSHTarget(host: "127.0.0.1", port: port, user: "nobody", authentication: .password("x"))
        let (error, elapsed) = await expectError { _ = try await SSHConnection.connect(to: target, hostKeyStore: InMemoryHostKeyStore()) }
        XCTAssertEqual(error?.kind, .connect)
        XCTAssertLessThan(elapsed, .seconds(3))
    }

    func testUploadWritesContentModeAndOwner() async throws {
        let server = try TestSSHServer()
        // The 12 MiB file is read back whole, so the output cap is raised above it.
        let connection = try await connect(server, options: .init(maxOutputBytes: 16 << 20))
        let path = server.homeDirectory + "/-it's a \"file\" $(x).txt"
        let contents = Array("line one\nsecond 'line' with $HOME and `backticks`\n".utf8) + [0, 255, 10]
        try await connection.upload(contents, to: path, mode: 0o640, owner: TestSSHServer.user)
        XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: path))), contents)
        let stat = try await connection.run(Command("stat", "-c", "%a %U", path))
        XCTAssertEqual(stat.output, "640 \(TestSSHServer.user)\n")

        try await connection.upload(Array("replaced".utf8), to: path, mode: 0o600)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "replaced")
        let restat = try await connection.run(Command("stat", "-c", "%a", path))
        XCTAssertEqual(restat.output, "600\n")

        // A relative path (from the remote home directory) that looks like an option.
        try await connection.upload(Array("dash".utf8), to: "-leading dash.txt", mode: 0o644)
        XCTAssertEqual(try String(contentsOfFile: server.homeDirectory + "/-leading dash.txt", encoding: .utf8), "dash")

        // Larger than the SSH channel window, so flow control is exercised both ways.
        let block = (0..<65_536).map { _ in UInt8.random(in: 0...255) }
        var large: [UInt8] = []
        for _ in 0..<192 { large += block }
        let largePath = server.homeDirectory + "/large.bin"
        try await connection.upload(large, to: largePath)
        let echoed = try await connection.run(Command("cat", largePath))
        XCTAssertEqual(echoed.standardOutput.count, large.count)
        XCTAssertTrue(echoed.standardOutput == large, "12 MiB round trip differs")

        let (error, _) = await expectError { try await connection.upload([1], to: "/nonexistent-dir/file") }
        XCTAssertEqual(error?.kind, .remoteCommand)
        let (modeError, _) = await expectError { try await connection.upload([1], to: path, mode: 0o10000) }
        XCTAssertEqual(modeError?.kind, .invalidArgument)
        await connection.close()
    }

    /// Review finding 15: a guest that prints without end must not fill the server's memory.
    func testOutputBeyondTheCapIsCutAndMarkedTruncated() async throws {
        let server = try TestSSHServer()
        let connection = try await connect(server)
        // 3 MiB on standard output and 2 MiB on standard error, against the default cap of 1 MiB per stream.
        let result = try await connection.run(
            Command.script("head -c 3145728 /dev/zero | tr '\\0' o; head -c 2097152 /dev/zero >&2; echo done >&2"), timeout: .seconds(30))
        XCTAssertEqual(result.exitStatus, 0)
        XCTAssertEqual(result.standardOutput.count, 1 << 20)
        XCTAssertEqual(result.standardError.count, 1 << 20)
        XCTAssertEqual(Set(result.standardOutput), [UInt8(ascii: "o")])
        XCTAssertTrue(result.truncated)

        let small = try await connection.run(Command("echo", "short"))
        XCTAssertFalse(small.truncated)
        await connection.close()

        let tight = try await connect(server, options: .init(maxOutputBytes: 5))
        let cut = try await tight.run(Command("echo", "0123456789"))
        XCTAssertEqual(cut.output, "01234")
        XCTAssertTrue(cut.truncated)
        await tight.close()
    }

    /// A machine's key pinned by the caller (not by address): any other key fails the handshake
    /// before a credential is offered, and the error names the host and both fingerprints.
    func testExpectedHostKeyIsEnforcedPerTarget() async throws {
        let server = try TestSSHServer()
        let firstContact = try await SSHConnection.connect(
            to: SSHTarget(
                host: "127.0.0.1", port: server.port, user: TestSSHServer.user,
                authentication: .password(TestSSHServer.password), hostKeyCheck: .firstContact),
            hostKeyStore: InMemoryHostKeyStore())
        let machineKey = firstContact.hostKey
        XCTAssertEqual(machineKey.fingerprint, try server.hostKeyFingerprint())
        await firstContact.close()

        var target = passwordTarget(server)
        target.hostKeyCheck = .expected(machineKey)
        let store = InMemoryHostKeyStore()
        try await SSHConnection.connect(to: target, hostKeyStore: store).close()
        let untouched = await store.pinnedKey(for: target.hostKeyName)
        XCTAssertNil(untouched, "an expected key is the caller's pin, not the store's")

        let logPath = server.directory.appendingPathComponent("sshd.log").path
        try server.restartWithNewHostKey()
        let logBefore = try Data(contentsOf: URL(fileURLWithPath: logPath)).count
        let impostor = try server.hostKeyFingerprint()
        let (error, elapsed) = await expectError { _ = try await SSHConnection.connect(to: target, hostKeyStore: store) }
        XCTAssertEqual(error?.kind, .hostKeyMismatch)
        XCTAssertEqual(error?.host, "[127.0.0.1]:\(server.port)")
        XCTAssertTrue(error?.message.contains(machineKey.fingerprint) ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains(impostor) ?? false, "\(String(describing: error))")
        XCTAssertLessThan(elapsed, .seconds(10))
        let log = String(decoding: try Data(contentsOf: URL(fileURLWithPath: logPath)).dropFirst(logBefore), as: UTF8.self)
        XCTAssertFalse(log.contains("password for \(TestSSHServer.user)"), "no password may reach a host with the wrong key:\n\(log)")
    }

    /// A pooled connection is not reused for a target that expects another host key.
    func testPoolDoesNotReuseAConnectionWithAnotherHostKey() async throws {
        let server = try TestSSHServer()
        let pool = ShellPool(hostKeyStore: InMemoryHostKeyStore())
        var target = passwordTarget(server)
        target.hostKeyCheck = .firstContact
        let first = try await pool.connection(to: target)
        target.hostKeyCheck = .expected(first.hostKey)
        let same = try await pool.connection(to: target)
        XCTAssertTrue(first === same)
        target.hostKeyCheck = .expected(
            try SSHHostKey(openSSHPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBMCdFYcbgWrUuWI0Ck5fX4QmySZJKWTeo1gVNlLa4NB"))
        let (error, _) = await expectError { _ = try await pool.run(Command("true"), on: target) }
        XCTAssertEqual(error?.kind, .hostKeyMismatch)
        XCTAssertFalse(first.isActive, "the connection to a host with another key is dropped")
        await pool.shutdown()
    }

    /// A generated key, written in OpenSSH's format, is read by ssh-keygen and logs in.
    func testGeneratedEd25519KeyRoundTripsAndLogsIn() async throws {
        let server = try TestSSHServer()
        let key = SSHPrivateKey.generateEd25519()
        let path = server.directory.appendingPathComponent("generated").path
        try key.openSSHFileContents(comment: "flotilla").write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
        let derived = try runTool("/usr/bin/ssh-keygen", "-y", "-f", path)
        XCTAssertEqual(derived.split(separator: " ").prefix(2).joined(separator: " "), key.publicKeyLine)
        let fingerprint = try runTool("/usr/bin/ssh-keygen", "-l", "-f", path).split(separator: " ")[1]
        XCTAssertEqual(key.publicKeyFingerprint, String(fingerprint))
        XCTAssertEqual(try SSHPrivateKey(contentsOfFile: path).publicKeyLine, key.publicKeyLine)

        let authorized = server.directory.appendingPathComponent("authorized_keys")
        try (try String(contentsOf: authorized, encoding: .utf8) + key.publicKeyLine + "\n").write(
            to: authorized, atomically: true, encoding: .utf8)
        let connection = try await SSHConnection.connect(
            to: SSHTarget(host: "127.0.0.1", port: server.port, user: TestSSHServer.user, authentication: .privateKey(key)),
            hostKeyStore: InMemoryHostKeyStore())
        let identity = try await connection.run(Command("id", "-un"))
        XCTAssertEqual(identity.output, TestSSHServer.user + "\n")
        await connection.close()
    }

    static let hostileStrings = [
        "'; rm -rf / #", "$(reboot)", "`reboot`", "a\nb\r\nc", "\"double\" 'single' \\backslash\\",
        "ünïcødé ✓ 日本語 🚀", "", " leading and trailing ", "-n", "--", "*", "~", "$HOME", "a=b", "!!", "'", "\t",
    ]

    func testHostileArgumentsArriveIntact() async throws {
        let server = try TestSSHServer()
        let connection = try await connect(server)
        for value in Self.hostileStrings {
            let direct = try await connection.run(Command("printf", "%s", value))
            XCTAssertEqual(direct.standardOutput, Array(value.utf8), "printf argument \(value.debugDescription)")
            let scripted = try await connection.run(Command.script(#"printf '%s' "$1""#, arguments: [value]))
            XCTAssertEqual(scripted.standardOutput, Array(value.utf8), "script argument \(value.debugDescription)")
        }
        let all = try await connection.run(Command("printf", arguments: ["%s\\0"] + Self.hostileStrings))
        XCTAssertEqual(all.standardOutput, Array(Self.hostileStrings.map { $0 + "\0" }.joined().utf8))
        let (error, _) = await expectError { _ = try await connection.run(Command("echo", "nul\0byte")) }
        XCTAssertEqual(error?.kind, .invalidArgument)
        await connection.close()
    }

    func testManyConcurrentChannelsOverOneConnectionBeyondMaxSessions() async throws {
        let server = try TestSSHServer(maxSessions: 10)
        for cap in [8, 25] {
            let connection = try await connect(server, options: .init(maxConcurrentChannels: cap))
            let outputs = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<60 {
                    group.addTask { try await connection.run(Command.script(#"sleep 0.05; echo "$1""#, arguments: ["\(index)"])).output }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            XCTAssertEqual(Set(outputs), Set((0..<60).map { "\($0)\n" }), "channel cap \(cap)")
            await connection.close()
        }
    }

    func testFanOutReportsPerHostResults() async throws {
        let servers = try (0..<3).map { _ in try TestSSHServer() }
        let refusedPort = try freeLoopbackPort()
        let pool = ShellPool(hostKeyStore: InMemoryHostKeyStore(), options: .init(connectTimeout: .seconds(2)))
        var targets = servers.map { passwordTarget($0) }
        targets.append(SSHTarget(host: "127.0.0.1", port: refusedPort, user: "x", authentication: .password("x")))
        targets.append(SSHTarget(host: "127.0.0.1", port: servers[1].port, user: "intruder", authentication: .password("wrong")))
        let results = await pool.fanOut(to: targets, command: Command.script(#"echo "$1"; exit 4"#, arguments: ["hi"]), concurrency: 2)
        XCTAssertEqual(results.count, 5)
        for result in results.prefix(3) {
            XCTAssertEqual(result.exitStatus, 4)
            XCTAssertEqual(try result.result.get().output, "hi\n")
        }
        XCTAssertEqual(results[3].failure?.kind, .connect)
        XCTAssertEqual(results[4].failure?.kind, .authentication)

        // The pooled connections are reused: a second fan-out needs no new handshake.
        let first = try await pool.connection(to: targets[0])
        _ = await pool.fanOut(to: Array(targets.prefix(3)), command: Command("true"))
        let second = try await pool.connection(to: targets[0])
        XCTAssertTrue(first === second)
        await pool.shutdown()
    }

    func testPoolReplacesDeadConnectionsAndClosesIdleOnes() async throws {
        let server = try TestSSHServer()
        let pool = ShellPool(hostKeyStore: InMemoryHostKeyStore(), idleTimeout: .milliseconds(300))
        let target = passwordTarget(server)
        let first = try await pool.connection(to: target)
        await first.close()
        let again = try await pool.run(Command("echo", "again"), on: target)
        XCTAssertEqual(again.output, "again\n")
        let second = try await pool.connection(to: target)
        XCTAssertFalse(first === second)
        try await Task.sleep(for: .seconds(1))
        XCTAssertFalse(second.isActive, "idle connection should have been closed")
        let afterIdle = try await pool.run(Command("echo", "after idle"), on: target)
        XCTAssertEqual(afterIdle.output, "after idle\n")
        let third = try await pool.connection(to: target)
        await pool.closeConnections(toHost: "127.0.0.1")
        XCTAssertFalse(third.isActive)
        let fourth = try await pool.connection(to: target)
        XCTAssertTrue(fourth.isActive)
        await pool.shutdown()
    }
}
