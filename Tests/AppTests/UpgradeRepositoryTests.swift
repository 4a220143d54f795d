import Foundation
import XCTest

@testable import App

/// Repository access for upgrades (issue 12 §2) against real servers on loopback: `git daemon`
/// over a bare repository and `svnserve` over an `svnadmin` repository, both filled with the
/// stock clients.
final class UpgradeRepositoryTests: XCTestCase {
    private static let servers = RepositoryServers()

    private var servers: RepositoryServers { Self.servers }

    override func setUp() async throws {
        try servers.startOnce()
    }

    override class func tearDown() {
        servers.stop()
    }

    private func git() throws -> RepositoryAccess {
        RepositoryAccess(location: try RepositoryLocation(kind: .git, url: servers.gitURL))
    }

    private func svn() throws -> RepositoryAccess {
        RepositoryAccess(location: try RepositoryLocation(kind: .svn, url: servers.svnURL))
    }

    // MARK: Git

    func testGitBranchTagAndCommitResolveToCommitIDs() async throws {
        let access = try git()
        let main = try await access.resolve("main")
        XCTAssertEqual(main.id, servers.gitCommits["main"])
        let feature = try await access.resolve("feature/login")
        XCTAssertEqual(feature.id, servers.gitCommits["feature/login"])
        // An annotated tag resolves to the commit it names, not to the tag object.
        let tag = try await access.resolve("v1.0")
        XCTAssertEqual(tag.id, servers.gitCommits["first"])
        let first = try XCTUnwrap(servers.gitCommits["first"])
        let byID = try await access.resolve(first)
        XCTAssertEqual(byID.id, first)
    }

    func testGitUnknownBranchOrCommitIsAClearError() async throws {
        let access = try git()
        await assertThrows(RepositoryError.unknownRevision("no-such-branch")) { _ = try await access.resolve("no-such-branch") }
        let missing = String(repeating: "ab", count: 20)
        let scratch = try temporaryDirectory()
        await assertThrows(RepositoryError.unknownRevision(missing)) {
            _ = try await access.fetch(missing, into: scratch.appendingPathComponent("release.tar"))
        }
    }

    func testGitFetchPacksTheRevisionOnceAndReportsItsSize() async throws {
        let access = try git()
        let scratch = try temporaryDirectory()
        let tarball = scratch.appendingPathComponent("release.tar")
        let release = try await access.fetch("v1.0", into: tarball)
        XCTAssertEqual(release.revision.id, servers.gitCommits["first"])
        XCTAssertEqual(try runTool("tar", ["-xOf", tarball.path, "app.py"], in: scratch), "print('version 1')\n")
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: tarball.path)[.size] as? Int)
        XCTAssertEqual(release.summary.archiveBytes, size)
        XCTAssertEqual(release.summary.files, 2)

        // A commit that is no branch or tag tip is fetched by its id.
        let older = try await access.fetch(try XCTUnwrap(servers.gitCommits["first"]), into: scratch.appendingPathComponent("old.tar"))
        XCTAssertEqual(older.revision.id, servers.gitCommits["first"])
    }

    func testGitReleaseWithASymlinkOutOfTheReleaseIsRefused() async throws {
        let access = try git()
        let scratch = try temporaryDirectory()
        let tarball = scratch.appendingPathComponent("release.tar")
        await assertThrows(RepositoryError.unsafeArchive("passwd links out of the release directory")) {
            _ = try await access.fetch("evil", into: tarball)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: tarball.path), "a refused tarball is deleted")
    }

    // MARK: SVN

    func testSVNRevisionNumbersResolveAndExport() async throws {
        let access = try svn()
        let first = try await access.resolve("1")
        XCTAssertEqual(first.id, "1")
        let scratch = try temporaryDirectory()
        let tarball = scratch.appendingPathComponent("release.tar")
        let release = try await access.fetch("2", into: tarball)
        XCTAssertEqual(release.revision.id, "2")
        XCTAssertEqual(try runTool("tar", ["-xOf", tarball.path, "./app.py"], in: scratch), "print('version 2')\n")
        XCTAssertGreaterThan(release.summary.archiveBytes, 0)
        await assertThrows(RepositoryError.unknownRevision("99")) { _ = try await access.resolve("99") }
    }

    func testPrivateSVNRepositoryIsReadWithSealedCredentialsOnStandardInput() async throws {
        let location = try RepositoryLocation(kind: .svn, url: servers.privateSVNURL)
        let anonymous = RepositoryAccess(location: location)
        do {
            _ = try await anonymous.resolve("1")
            XCTFail("the private repository answered without credentials")
        } catch let error as RepositoryError {
            guard case .commandFailed = error else { return XCTFail("\(error)") }
        }
        var wrong = anonymous
        wrong.credentials = RepositoryCredentials(username: "deploy", password: "wrong-password")
        do {
            _ = try await wrong.resolve("1")
            XCTFail("a wrong password was accepted")
        } catch is RepositoryError {}
        var access = anonymous
        access.credentials = RepositoryCredentials(username: "deploy", password: RepositoryServers.privatePassword)
        let resolved = try await access.resolve("1")
        XCTAssertEqual(resolved.id, "1")
        let scratch = try temporaryDirectory()
        let release = try await access.fetch("1", into: scratch.appendingPathComponent("release.tar"))
        XCTAssertGreaterThan(release.summary.files, 0)
    }

    // MARK: Hostile input

    func testHostileRevisionsAreRefusedBeforeAnyClientRuns() async throws {
        let marker = "/tmp/flotilla-upgrade-\(UUID().uuidString)"
        let hostile = [
            "--upload-pack=touch \(marker)", "-r1", "HEAD; rm -rf /", "../../x", "main\ntouch \(marker)",
            "$(touch \(marker))", "", "a..b",
        ]
        let scratch = try temporaryDirectory()
        for access in [try git(), try svn()] {
            for revision in hostile {
                do {
                    _ = try await access.fetch(revision, into: scratch.appendingPathComponent("release.tar"))
                    XCTFail("\(revision) was accepted for \(access.location.kind)")
                } catch let error as RepositoryError {
                    guard case .invalidRevision = error else {
                        return XCTFail("\(revision): expected a validation error, got \(error)")
                    }
                }
            }
        }
        XCTAssertThrowsError(try RepositoryAccess.validate("main", for: .svn))
        XCTAssertThrowsError(try RepositoryAccess.validate("12a", for: .svn))
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "a hostile revision ran a command")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), [])
    }

    func testRepositoryURLsAreLimitedToNetworkTransports() {
        for url in ["ext::sh -c touch% /tmp/x", "file:///etc", "-uhttp://x", "git://", "http://host/\u{7}"] {
            XCTAssertThrowsError(try RepositoryLocation(kind: .git, url: url), url)
        }
        XCTAssertThrowsError(try RepositoryLocation(kind: .svn, url: "git://127.0.0.1/repo"))
        XCTAssertNoThrow(try RepositoryLocation(kind: .svn, url: "svn://127.0.0.1/repo"))
    }

    // MARK: Tarball check

    func testTarballsEscapingTheReleaseDirectoryAreRefused() throws {
        let cases: [(String, String)] = [
            ("../ entry", "t.add(file('../escape'))"),
            ("absolute path", "t.add(file('/etc/cron.d/x'))"),
            ("symlink out", "t.add(link('app', '../../etc'))"),
            ("absolute symlink", "t.add(link('app', '/etc'))"),
            ("symlink chain", "t.add(link('here', '.')); t.add(link('up', 'here/..'))"),
            ("entry through a symlink", "t.add(link('here', 'sub')); t.add(file('here/x'))"),
            ("hard link out", "t.add(hard('h', '../../etc/passwd'))"),
            ("FIFO", "i = tarfile.TarInfo('pipe'); i.type = tarfile.FIFOTYPE; t.addfile(i)"),
            ("device", "i = tarfile.TarInfo('dev'); i.type = tarfile.CHRTYPE; t.addfile(i)"),
            ("pax name with a newline", "t.add(file('a\\n../../x'))"),
        ]
        let scratch = try temporaryDirectory()
        for (name, body) in cases {
            let tarball = try makeTarball(body, in: scratch)
            XCTAssertThrowsError(try ReleaseArchive.check(tarball, limit: 1 << 20), name) { error in
                guard case RepositoryError.unsafeArchive = error else { return XCTFail("\(name): \(error)") }
            }
        }
        let fine = try makeTarball(
            "t.add(file('app/main.py')); t.add(link('app/current', 'main.py')); t.add(link('top', 'app/../app'))",
            in: scratch)
        XCTAssertEqual(try ReleaseArchive.check(fine, limit: 1 << 20).files, 1)
        XCTAssertThrowsError(try ReleaseArchive.check(fine, limit: 100), "size limit")
    }

    /// A tarball written by Python's `tarfile` (pax format) with `body` as the entries.
    private func makeTarball(_ body: String, in directory: URL) throws -> URL {
        let tarball = directory.appendingPathComponent("\(UUID().uuidString).tar")
        let script = """
            import io, sys, tarfile
            def file(name, data=b'x' * 10):
                i = tarfile.TarInfo(name); i.size = len(data); return (i, io.BytesIO(data))
            def link(name, target):
                i = tarfile.TarInfo(name); i.type = tarfile.SYMTYPE; i.linkname = target; return (i, None)
            def hard(name, target):
                i = tarfile.TarInfo(name); i.type = tarfile.LNKTYPE; i.linkname = target; return (i, None)
            class Writer:
                def __init__(self, t): self.t = t
                def add(self, entry): self.t.addfile(*entry)
                def addfile(self, i): self.t.addfile(i)
            with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as raw:
                t = Writer(raw)
                \(body)
            """
        try runTool("python3", ["-c", script, tarball.path], in: directory)
        return tarball
    }

    private func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("upgrade-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        return directory
    }

    private func assertThrows(
        _ expected: RepositoryError, file: StaticString = #filePath, line: UInt = #line, _ body: () async throws -> Void
    ) async {
        do {
            try await body()
            XCTFail("expected \(expected)", file: file, line: line)
        } catch {
            XCTAssertEqual(error as? RepositoryError, expected, file: file, line: line)
        }
    }
}

/// Runs a stock client for the test's own setup and returns what it printed.
@discardableResult
func runTool(_ name: String, _ arguments: [String], in directory: URL) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [name] + arguments
    process.currentDirectoryURL = directory
    var environment = ProcessInfo.processInfo.environment
    environment["GIT_CONFIG_NOSYSTEM"] = "1"
    environment["HOME"] = directory.path
    process.environment = environment
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let printed = output.fileHandleForReading.readDataToEndOfFile()
    let complaint = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw NotificationTestError("\(name) \(arguments.first ?? "") failed: \(String(decoding: complaint, as: UTF8.self))")
    }
    return String(decoding: printed, as: UTF8.self)
}

/// Starts a stock server program and waits until it listens on the loopback `port`.
func launchLoopbackDaemon(_ name: String, _ arguments: [String], port: Int) throws -> Process {
    var name = name
    var arguments = arguments
    // `git daemon` runs `git-daemon` as a child that killing `git` leaves behind, holding the test
    // run's descriptors open (the run never ended): the daemon program is started itself.
    if name == "git", arguments.first == "daemon" {
        let execPath = try runTool("git", ["--exec-path"], in: FileManager.default.temporaryDirectory)
        name = execPath.trimmingCharacters(in: .whitespacesAndNewlines) + "/git-daemon"
        arguments.removeFirst()
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [name] + arguments
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(10)
    while Date() < deadline {
        if isListening(port) { return process }
        guard process.isRunning else { break }
        usleep(20_000)
    }
    kill(process.processIdentifier, SIGKILL)
    throw NotificationTestError("\(name) did not start listening on port \(port)")
}

private func isListening(_ port: Int) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port)).bigEndian
    address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}

/// `git daemon` and `svnserve` on loopback over repositories built once for the test class.
private final class RepositoryServers: @unchecked Sendable {
    private let lock = NSLock()
    private var started = false
    private var processes: [Process] = []
    private var git: ServedGitRepository?
    private let root = FileManager.default.temporaryDirectory.appendingPathComponent("upgrade-repos-\(UUID().uuidString)")
    private(set) var gitURL = ""
    private(set) var svnURL = ""
    /// An SVN repository that refuses anonymous reads.
    private(set) var privateSVNURL = ""
    static let privatePassword = "Svn-Secret-5"
    /// Commit ids by name: `first` (tagged v1.0), `main`, `feature/login`.
    private(set) var gitCommits: [String: String] = [:]

    func startOnce() throws {
        lock.lock()
        defer { lock.unlock() }
        guard !started else { return }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try buildGitRepository()
        try buildSVNRepository()
        started = true
    }

    func stop() {
        // SIGKILL without waiting: the servers may have inherited an ignored SIGTERM, and
        // waiting on a daemon whose connection children linger can block the test run.
        for process in processes where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        processes = []
        git?.stop()
        try? FileManager.default.removeItem(at: root)
    }

    private func buildGitRepository() throws {
        let repository = try ServedGitRepository { work in
            try work.write("print('version 1')\n", to: "app.py")
            try work.write("static\n", to: "README")
            try work.commitAll("first", name: "first")
            try work.git("tag", "-a", "v1.0", "-m", "release 1.0")
            try work.git("checkout", "-q", "-b", "feature/login")
            try work.write("print('login')\n", to: "app.py")
            try work.commitAll("login", name: "feature/login")
            try work.git("checkout", "-q", "-b", "evil", "main")
            try FileManager.default.createSymbolicLink(
                atPath: work.directory.appendingPathComponent("passwd").path, withDestinationPath: "../../etc/passwd")
            try work.commitAll("escape")
            try work.git("checkout", "-q", "main")
            try work.write("print('version 2')\n", to: "app.py")
            try work.commitAll("second", name: "main")
        }
        git = repository
        gitURL = repository.url
        gitCommits = repository.commits
    }

    private func buildSVNRepository() throws {
        let served = root.appendingPathComponent("svn")
        try FileManager.default.createDirectory(at: served, withIntermediateDirectories: true)
        let repository = served.appendingPathComponent("app")
        try runTool("svnadmin", ["create", repository.path], in: root)
        let checkout = root.appendingPathComponent("svn-work")
        let svnOptions = ["--non-interactive", "--config-dir", root.appendingPathComponent("svn-config").path]
        try runTool("svn", svnOptions + ["checkout", "-q", "file://\(repository.path)", checkout.path], in: root)
        for version in 1...2 {
            try write("print('version \(version)')\n", to: checkout.appendingPathComponent("app.py"))
            if version == 1 { try runTool("svn", svnOptions + ["add", "-q", "app.py"], in: checkout) }
            try runTool("svn", svnOptions + ["commit", "-q", "-m", "version \(version)"], in: checkout)
        }
        // A second repository that only a user with the password may read.
        let privateRepository = served.appendingPathComponent("private")
        try runTool("svnadmin", ["create", privateRepository.path], in: root)
        try runTool(
            "svn",
            svnOptions + [
                "import", "-q", "-m", "private", checkout.appendingPathComponent("app.py").path, "file://\(privateRepository.path)/app.py",
            ],
            in: root)
        try write(
            "[general]\nanon-access = none\nauth-access = read\npassword-db = passwd\n",
            to: privateRepository.appendingPathComponent("conf/svnserve.conf"))
        try write("[users]\ndeploy = \(Self.privatePassword)\n", to: privateRepository.appendingPathComponent("conf/passwd"))
        let port = try freeLoopbackPort()
        try launch(
            "svnserve", ["-d", "--foreground", "--listen-host", "127.0.0.1", "--listen-port", "\(port)", "-r", served.path],
            port: port)
        svnURL = "svn://127.0.0.1:\(port)/app"
        privateSVNURL = "svn://127.0.0.1:\(port)/private"
    }

    private func launch(_ name: String, _ arguments: [String], port: Int) throws {
        processes.append(try launchLoopbackDaemon(name, arguments, port: port))
    }

    private func write(_ text: String, to file: URL) throws {
        try Data(text.utf8).write(to: file)
    }
}
