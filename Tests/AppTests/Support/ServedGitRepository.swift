import Foundation

/// A Git repository made with the stock `git` client and served by a real `git daemon` on
/// loopback (`url`), for the upgrade tests: the test makes its history in a work tree, which is
/// then cloned bare into the directory the daemon serves.
final class ServedGitRepository: @unchecked Sendable {
    /// The work tree the history is made in.
    final class WorkTree {
        let directory: URL
        /// Commit ids by the names given to `commitAll` (tags and chosen names).
        fileprivate(set) var commits: [String: String] = [:]
        private static let identity = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]

        fileprivate init(_ directory: URL) {
            self.directory = directory
        }

        func write(_ text: String, to name: String) throws {
            try Data(text.utf8).write(to: directory.appendingPathComponent(name))
        }

        func remove(_ name: String) throws {
            try FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }

        /// Runs `git` in the work tree, as the test's committer.
        @discardableResult
        func git(_ arguments: String...) throws -> String {
            try runTool("git", Self.identity + arguments, in: directory)
        }

        /// Commits every change, tags the commit when `tag` is given, and returns its id
        /// (also kept in `commits` under `name`, else under the tag).
        @discardableResult
        func commitAll(_ message: String, tag: String? = nil, name: String? = nil) throws -> String {
            try git("add", "-A")
            try git("commit", "-q", "-m", message)
            if let tag { try git("tag", tag) }
            let id = try git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
            if let key = name ?? tag { commits[key] = id }
            return id
        }
    }

    let url: String
    /// Commit ids by the names the history gave them.
    let commits: [String: String]
    private let root = FileManager.default.temporaryDirectory.appendingPathComponent("served-git-\(UUID().uuidString)")
    private let daemon: Process

    /// Makes the history with `build` on branch `main` and starts serving it.
    init(_ build: (WorkTree) throws -> Void) throws {
        let work = WorkTree(root.appendingPathComponent("work"))
        try FileManager.default.createDirectory(at: work.directory, withIntermediateDirectories: true)
        try work.git("init", "-q", "-b", "main")
        try build(work)
        commits = work.commits
        let served = root.appendingPathComponent("git")
        try FileManager.default.createDirectory(at: served, withIntermediateDirectories: true)
        try runTool("git", ["clone", "-q", "--bare", work.directory.path, served.appendingPathComponent("app.git").path], in: root)
        let port = try freeLoopbackPort()
        daemon = try launchLoopbackDaemon(
            "git",
            ["daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1", "--port=\(port)", "--base-path=\(served.path)", served.path],
            port: port)
        url = "git://127.0.0.1:\(port)/app.git"
    }

    /// The sample application, one tagged commit per version (`v1`, `v2`, …): `app.py` prints
    /// its version, and a `healthy` file is there in the versions `isHealthy` accepts.
    static func sampleApplication(versions: Int, isHealthy: (Int) -> Bool = { _ in true }) throws -> ServedGitRepository {
        try ServedGitRepository { work in
            for version in 1...versions {
                try work.write("print('version \(version)')\n", to: "app.py")
                if isHealthy(version) {
                    try work.write("ok\n", to: "healthy")
                } else if FileManager.default.fileExists(atPath: work.directory.appendingPathComponent("healthy").path) {
                    try work.remove("healthy")
                }
                try work.commitAll("version \(version)", tag: "v\(version)")
            }
        }
    }

    /// Kills the daemon (SIGKILL without waiting: it may have inherited an ignored SIGTERM) and
    /// removes the repository.
    func stop() {
        if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: root)
    }
}
