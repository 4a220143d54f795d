import Foundation

/// Why a repository could not be read or a release could not be accepted; every message is fit
/// to show the operator (no credentials, no server internals beyond the client's last line).
enum RepositoryError: Error, Equatable, CustomStringConvertible {
    case invalidURL(String)
    case invalidRevision(String)
    case unknownRevision(String)
    case commandFailed(String, detail: String)
    case clientMissing(String)
    case timedOut(String)
    case unsafeArchive(String)

    var description: String {
        switch self {
        case .invalidURL(let reason): "Invalid repository URL: \(reason)."
        case .invalidRevision(let reason): "Invalid revision: \(reason)."
        case .unknownRevision(let revision): "The repository has no revision \(revision)."
        case .commandFailed(let what, let detail): "Could not \(what)" + (detail.isEmpty ? "." : ": \(detail)")
        case .clientMissing(let name): "The \(name) client is not installed on the Flotilla host."
        case .timedOut(let name): "\(name) did not finish in time."
        case .unsafeArchive(let reason): "Release refused: \(reason)."
        }
    }
}

/// Where an application's code lives (issue 12 §1): a Git repository or an SVN URL.
struct RepositoryLocation: Codable, Hashable, Sendable {
    enum Kind: String, Codable, Sendable {
        case git, svn
    }

    var kind: Kind
    var url: String

    /// URL schemes each client may use; Git's `ext::` and `file://` transports (which run local
    /// commands or read the Flotilla host's disk) are never among them.
    static func allowedSchemes(for kind: Kind) -> Set<String> {
        switch kind {
        case .git: ["git", "http", "https", "ssh"]
        case .svn: ["svn", "svn+ssh", "http", "https"]
        }
    }

    init(kind: Kind, url: String) throws {
        guard !url.hasPrefix("-"), !UserValue.hasControlCharacters(url), url.count <= 2048 else {
            throw RepositoryError.invalidURL("it must not start with '-' or contain control characters")
        }
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            Self.allowedSchemes(for: kind).contains(scheme), components.host?.isEmpty == false
        else {
            let schemes = Self.allowedSchemes(for: kind).sorted().joined(separator: ", ")
            throw RepositoryError.invalidURL("a \(kind.rawValue) repository needs a \(schemes) URL with a host")
        }
        self.kind = kind
        self.url = url
    }
}

/// A revision the repository confirmed: the exact commit id (Git) or revision number (SVN)
/// that every VM of a rollout receives, whatever name the operator typed.
struct ResolvedRevision: Codable, Hashable, Sendable {
    /// What the operator asked for (branch, tag, commit id or SVN revision number).
    var requested: String
    /// The full commit id or the SVN revision number.
    var id: String
}

/// A release fetched once from the repository, checked, and packed for the guests.
struct FetchedRelease: Sendable {
    var revision: ResolvedRevision
    var tarball: URL
    var summary: ReleaseArchive.Summary
}

/// Rules shared by every value a user hands to a repository client.
enum UserValue {
    static func hasControlCharacters(_ value: String) -> Bool {
        value.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }
}

/// Reads revisions from a repository with the real `git` and `svn` clients (issue 12 §2):
/// `resolve` confirms a revision before any VM is touched, `fetch` exports it once into a
/// checked tarball.
struct RepositoryAccess: Sendable {
    var location: RepositoryLocation
    /// For a private repository: sent as an HTTP Basic header to Git over http(s) (through the
    /// environment) and on standard input to `svn`; never in a command line or a log.
    var credentials: RepositoryCredentials? = nil
    /// Upper bound for both the tarball and its unpacked files.
    var sizeLimit: Int = 512 * 1024 * 1024
    var timeout: Duration = .seconds(120)

    /// Refuses anything that is not shaped like a revision of this repository kind, before any
    /// client runs: a Git commit id, tag or branch name; an SVN revision number.
    static func validate(_ revision: String, for kind: RepositoryLocation.Kind) throws {
        guard !revision.isEmpty, revision.count <= 255 else {
            throw RepositoryError.invalidRevision("give 1 to 255 characters")
        }
        guard !revision.hasPrefix("-") else {
            throw RepositoryError.invalidRevision("it must not start with '-'")
        }
        guard !UserValue.hasControlCharacters(revision), !revision.contains("..") else {
            throw RepositoryError.invalidRevision("it must not contain control characters or '..'")
        }
        switch kind {
        case .git:
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-")
            guard revision.allSatisfy(allowed.contains), !revision.hasPrefix("/"), !revision.hasSuffix("/"),
                !revision.hasSuffix(".lock"), !revision.contains("//")
            else {
                throw RepositoryError.invalidRevision("a Git revision is a commit id, a tag or a branch name")
            }
        case .svn:
            guard revision.count <= 10, revision.allSatisfy(\.isASCII), revision.allSatisfy(\.isNumber),
                Int(revision).map({ $0 > 0 }) == true
            else {
                throw RepositoryError.invalidRevision("an SVN revision is a revision number such as 1234")
            }
        }
    }

    /// Confirms `revision` against the repository and returns the exact revision to deploy.
    func resolve(_ revision: String) async throws -> ResolvedRevision {
        try Self.validate(revision, for: location.kind)
        return try await withScratchDirectory { directory in
            switch location.kind {
            case .git: try await resolveGit(revision, in: directory)
            case .svn: try await resolveSVN(revision, in: directory)
            }
        }
    }

    /// Resolves `revision`, exports it once into `destination` (a tarball path in a directory
    /// the caller owns) and checks the tarball; a refused tarball is deleted.
    func fetch(_ revision: String, into destination: URL) async throws -> FetchedRelease {
        try Self.validate(revision, for: location.kind)
        return try await withScratchDirectory { directory in
            let resolved: ResolvedRevision
            switch location.kind {
            case .git:
                resolved = try await resolveGit(revision, in: directory)
                try await exportGit(resolved, in: directory, to: destination)
            case .svn:
                resolved = try await resolveSVN(revision, in: directory)
                try await exportSVN(resolved, in: directory, to: destination)
            }
            do {
                let summary = try ReleaseArchive.check(destination, limit: sizeLimit)
                return FetchedRelease(revision: resolved, tarball: destination, summary: summary)
            } catch {
                try? FileManager.default.removeItem(at: destination)
                throw error
            }
        }
    }

    // MARK: Git

    /// A branch or tag name is looked up among the repository's refs (an annotated tag by the
    /// commit it points to); a full commit id is taken as is and proven by the fetch.
    private func resolveGit(_ revision: String, in directory: URL) async throws -> ResolvedRevision {
        let listing = try await RepositoryProcess.check(
            "git", Self.gitSafety + ["ls-remote", "--", location.url], in: directory,
            failure: "list the repository's branches and tags", timeout: timeout, environment: gitCredentials)
        var refs: [String: String] = [:]
        for line in listing.split(separator: "\n") {
            let fields = line.split(separator: "\t", maxSplits: 1)
            guard fields.count == 2 else { continue }
            refs[String(fields[1])] = String(fields[0])
        }
        for name in ["refs/heads/\(revision)", "refs/tags/\(revision)"] {
            if let id = refs[name + "^{}"] ?? refs[name] {
                return ResolvedRevision(requested: revision, id: id)
            }
        }
        let isCommitID = (revision.count == 40 || revision.count == 64) && revision.allSatisfy(\.isHexDigit)
        guard isCommitID else {
            throw RepositoryError.unknownRevision(revision)
        }
        return ResolvedRevision(requested: revision, id: revision.lowercased())
    }

    private func exportGit(_ revision: ResolvedRevision, in directory: URL, to destination: URL) async throws {
        let clone = directory.appendingPathComponent("clone.git")
        try await RepositoryProcess.check(
            "git", ["init", "-q", "--bare", "--", clone.path], in: directory,
            failure: "prepare the fetch", timeout: timeout)
        let fetched = try await RepositoryProcess.run(
            "git",
            Self.gitSafety + ["-C", clone.path, "fetch", "-q", "--no-tags", "--depth", "1", "--", location.url, revision.id],
            in: directory, timeout: timeout, environment: gitCredentials)
        guard fetched.status == 0 else {
            throw RepositoryError.unknownRevision(revision.requested)
        }
        try await RepositoryProcess.check(
            "git", ["-C", clone.path, "archive", "--format=tar", "-o", destination.path, "FETCH_HEAD"],
            in: directory, failure: "pack the revision", timeout: timeout)
    }

    /// Options that keep `git` to the network transports `RepositoryLocation` allows.
    private static let gitSafety = [
        "-c", "protocol.allow=never", "-c", "protocol.git.allow=always", "-c", "protocol.http.allow=always",
        "-c", "protocol.https.allow=always", "-c", "protocol.ssh.allow=always",
    ]

    /// Git's HTTP Basic header for http(s) URLs, as configuration from the environment.
    private var gitCredentials: [String: String] {
        guard let credentials, let scheme = URLComponents(string: location.url)?.scheme?.lowercased(), scheme.hasPrefix("http") else {
            return [:]
        }
        let token = Data("\(credentials.username):\(credentials.password)".utf8).base64EncodedString()
        return ["GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader", "GIT_CONFIG_VALUE_0": "Authorization: Basic \(token)"]
    }

    // MARK: SVN

    /// The user name as an argument, the password on standard input.
    private var svnCredentials: (arguments: [String], input: Data?) {
        guard let credentials else { return ([], nil) }
        return (["--username", credentials.username, "--password-from-stdin"], Data((credentials.password + "\n").utf8))
    }

    private static let svnOptions = ["--non-interactive", "--no-auth-cache", "--config-dir"]

    private func resolveSVN(_ revision: String, in directory: URL) async throws -> ResolvedRevision {
        let info = try await RepositoryProcess.run(
            "svn",
            Self.svnOptions + [directory.path] + svnCredentials.arguments
                + ["info", "-r", revision, "--show-item", "revision", "--", "\(location.url)@\(revision)"],
            in: directory, timeout: timeout, input: svnCredentials.input)
        guard info.status == 0 else {
            if info.errorOutput.contains("No such revision") || info.errorOutput.contains("E160006") {
                throw RepositoryError.unknownRevision(revision)
            }
            let detail = info.errorOutput.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
            throw RepositoryError.commandFailed("read the repository", detail: detail)
        }
        return ResolvedRevision(requested: revision, id: revision)
    }

    private func exportSVN(_ revision: ResolvedRevision, in directory: URL, to destination: URL) async throws {
        let export = directory.appendingPathComponent("export")
        try await RepositoryProcess.check(
            "svn",
            Self.svnOptions + [directory.path] + svnCredentials.arguments
                + ["export", "-q", "-r", revision.id, "--", "\(location.url)@\(revision.id)", export.path],
            in: directory, failure: "export the revision", timeout: timeout, input: svnCredentials.input)
        try await RepositoryProcess.check(
            "tar", ["--format=posix", "-C", export.path, "-cf", destination.path, "."],
            in: directory, failure: "pack the revision", timeout: timeout)
    }

    /// Runs `body` with a fresh private directory that is removed afterwards.
    private func withScratchDirectory<T: Sendable>(_ body: (URL) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flotilla-repo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: directory) }
        return try await body(directory)
    }
}
