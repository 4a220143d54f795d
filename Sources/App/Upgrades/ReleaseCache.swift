import Fluent
import Foundation

/// The fetched tarballs on this instance, one per application and revision (issue 12 §2:
/// fetched once, pushed to every VM). Steps of a rollout that run on another instance, or
/// after a restart that lost the file, fetch it again — once per instance, however many of
/// its steps ask at the same time.
actor ReleaseCache {
    static let shared = ReleaseCache()

    private var fetching: [String: Task<[UInt8], any Error>] = [:]

    /// Where an application's revision is kept under the data directory.
    static func path(dataDirectory: String, applicationID: UUID, revision: String) -> String {
        "\(dataDirectory)/releases/\(applicationID.uuidString)/\(revision).tar"
    }

    /// The tarball's bytes, fetched (and checked) first when the file is missing.
    func tarball(at path: String, revision: String, application: UpgradeApplication, secrets: SecretBox) async throws -> [UInt8] {
        if let data = FileManager.default.contents(atPath: path) { return [UInt8](data) }
        if let running = fetching[path] { return try await running.value }
        let access = try application.repositoryAccess(secrets: secrets)
        let task = Task<[UInt8], any Error> {
            _ = try await Self.fetch(access, revision: revision, to: path)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw FlotillaError(.unavailable, "the fetched release vanished from \(path)")
            }
            return [UInt8](data)
        }
        fetching[path] = task
        defer { fetching[path] = nil }
        return try await task.value
    }

    /// Fetches into a temporary name in the cache directory and renames it into place, so a
    /// half-written tarball is never taken for a complete one.
    static func fetch(_ access: RepositoryAccess, revision: String, to path: String) async throws -> FetchedRelease {
        let destination = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(
            at: destination.deletingLastPathComponent(), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let partial = destination.deletingLastPathComponent().appendingPathComponent(".\(UUID().uuidString).partial")
        var fetched = try await access.fetch(revision, into: partial)
        if FileManager.default.fileExists(atPath: path) { try? FileManager.default.removeItem(at: destination) }
        try FileManager.default.moveItem(at: partial, to: destination)
        fetched.tarball = destination
        return fetched
    }
}

/// Revisions marked bad (issue 12 §4): a rolled-back revision is never applied again by
/// auto-upgrade, and a person rolling it out must say they mean it.
struct BadRevisions {
    let database: any Database

    func isBad(applicationID: UUID, revision: String) async throws -> Bool {
        try await UpgradeBadRevision.query(on: database)
            .filter(\.$applicationID == applicationID).filter(\.$revision == revision).first() != nil
    }

    /// Marks `revision` (a resolved id, or the revision part of a release name) bad once.
    func mark(applicationID: UUID, revision: String, reason: String, by name: String) async throws {
        guard !revision.isEmpty else { return }
        let full = try await fullRevision(applicationID: applicationID, prefix: revision)
        guard try await !isBad(applicationID: applicationID, revision: full) else { return }
        let row = UpgradeBadRevision()
        row.applicationID = applicationID
        row.revision = full
        row.reason = String(reason.prefix(500))
        row.markedBy = name
        do {
            try await row.create(on: database)
        } catch let error as any DatabaseError where error.isConstraintFailure {
            return
        }
    }

    /// Clears the mark (a person chose to roll the revision out again).
    func clear(applicationID: UUID, revision: String) async throws {
        try await UpgradeBadRevision.query(on: database)
            .filter(\.$applicationID == applicationID).filter(\.$revision == revision).delete()
    }

    /// Release names carry a Git commit id shortened to 12: the full id is the one rollouts recorded.
    private func fullRevision(applicationID: UUID, prefix: String) async throws -> String {
        let rollouts = try await UpgradeRollout.query(on: database).filter(\.$applicationID == applicationID)
            .sort(\.$createdAt, .descending).all(\.$revision)
        return rollouts.first { $0.hasPrefix(prefix) } ?? prefix
    }
}
