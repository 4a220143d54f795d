import Fluent
import Foundation
import Vapor

/// Service profiles kept in the database (SPEC CFG-1): add, edit (each save is a new version),
/// read any version, delete; secret values sealed and never answered.
struct ServiceProfiles {
    let database: any Database
    let secrets: SecretBox
    let actor: AuditLog.Actor
    let logger: Logger

    /// A profile as pages and the API show it: never a secret's value, only whether it is set.
    struct Summary: Content {
        var id: UUID
        var name: String
        var description: String?
        var version: Int
        var document: String
        var dependencyRoles: [String]
        var targetRoles: [String]
        var secrets: [String]
        var secretsSet: [String]
        var updatedAt: Date?
    }

    struct VersionSummary: Content {
        var version: Int
        var author: String
        var createdAt: Date?
    }

    /// Adds a profile from its YAML; the name comes from the document and must be new.
    func add(document: String, secretValues: [String: String] = [:]) async throws -> ServiceProfileRecord {
        let profile = try ServiceProfile.parse(document)
        guard try await ServiceProfileRecord.query(on: database).filter(\.$name == profile.name).first() == nil else {
            throw FlotillaError.conflict("a profile named \(profile.name) already exists")
        }
        let record = ServiceProfileRecord()
        record.name = profile.name
        record.currentVersion = 1
        record.secretsSealed = try seal(try merged([:], with: secretValues, for: profile))
        try await database.transaction { transaction in
            try await record.create(on: transaction)
            try await saveVersion(1, of: record, document: document, on: transaction)
        }
        await audit("config.profile.add", "profile \(profile.name) added (version 1)")
        return record
    }

    /// Saves a new version (when the text changed) and sets any secret values given; an empty
    /// value leaves the stored one. Renaming is refused: runs and applied files refer to the name.
    func edit(_ record: ServiceProfileRecord, document: String?, secretValues: [String: String]) async throws -> ServiceProfileRecord {
        let current = try await version(record.currentVersion, of: record)
        let text = document ?? current.document
        let profile = try ServiceProfile.parse(text)
        guard profile.name == record.name else {
            throw FlotillaError.validation("name: a profile keeps its name (\(record.name)); add a new profile for another name")
        }
        let secretsSealed = try seal(try merged(try open(record), with: secretValues, for: profile))
        let changedText = text != current.document
        try await database.transaction { transaction in
            if changedText {
                record.currentVersion += 1
                try await saveVersion(record.currentVersion, of: record, document: text, on: transaction)
            }
            record.secretsSealed = secretsSealed
            try await record.save(on: transaction)
        }
        let secretNames = secretValues.filter { !$0.value.isEmpty }.keys.sorted()
        await audit(
            "config.profile.edit",
            "profile \(record.name): " + (changedText ? "version \(record.currentVersion) saved" : "text unchanged")
                + (secretNames.isEmpty ? "" : "; secrets set: \(secretNames.joined(separator: ", "))"))
        return record
    }

    func delete(_ record: ServiceProfileRecord) async throws {
        try await record.delete(on: database)
        await audit("config.profile.delete", "profile \(record.name) deleted")
    }

    func find(_ id: UUID) async throws -> ServiceProfileRecord {
        guard let record = try await ServiceProfileRecord.find(id, on: database) else { throw FlotillaError.notFound("no such profile") }
        return record
    }

    func list() async throws -> [Summary] {
        var summaries: [Summary] = []
        for record in try await ServiceProfileRecord.query(on: database).sort(\.$name).all() {
            summaries.append(try await summary(record))
        }
        return summaries
    }

    func summary(_ record: ServiceProfileRecord, version number: Int? = nil) async throws -> Summary {
        let version = try await version(number ?? record.currentVersion, of: record)
        let profile = try ServiceProfile.parse(version.document)
        let stored = try open(record)
        return Summary(
            id: try record.requireID(), name: record.name, description: profile.description, version: version.version,
            document: version.document, dependencyRoles: profile.dependencies.keys.sorted(), targetRoles: profile.targets.keys.sorted(),
            secrets: profile.secrets ?? [], secretsSet: (profile.secrets ?? []).filter { stored[$0] != nil }, updatedAt: record.updatedAt)
    }

    func versions(of record: ServiceProfileRecord) async throws -> [VersionSummary] {
        try await ServiceProfileVersion.query(on: database).filter(\.$profileID == record.requireID()).sort(\.$version, .descending)
            .all().map { VersionSummary(version: $0.version, author: $0.author, createdAt: $0.createdAt) }
    }

    func version(_ number: Int, of record: ServiceProfileRecord) async throws -> ServiceProfileVersion {
        guard
            let version = try await ServiceProfileVersion.query(on: database).filter(\.$profileID == record.requireID())
                .filter(\.$version == number).first()
        else { throw FlotillaError.notFound("profile \(record.name) has no version \(number)") }
        return version
    }

    /// The parsed profile of one version.
    func profile(_ record: ServiceProfileRecord, version number: Int) async throws -> ServiceProfile {
        try ServiceProfile.parse(try await version(number, of: record).document)
    }

    /// The secrets' values (for the guest and the checks only; never answered).
    func open(_ record: ServiceProfileRecord) throws -> [String: String] {
        let json = try secrets.open(record.secretsSealed)
        return (try? JSONDecoder().decode([String: String].self, from: Data(json.utf8))) ?? [:]
    }

    /// Adds the bundled example profiles (`Resources/Profiles/*.yaml`) that no profile of the same name shadows.
    func importExamples(from directory: String) async throws -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var added: [String] = []
        for file in files.sorted() where file.hasSuffix(".yaml") {
            guard let data = FileManager.default.contents(atPath: directory + "/" + file) else { continue }
            let text = String(decoding: data, as: UTF8.self)
            let profile = try ServiceProfile.parse(text)
            guard try await ServiceProfileRecord.query(on: database).filter(\.$name == profile.name).first() == nil else { continue }
            _ = try await add(document: text)
            added.append(profile.name)
        }
        return added
    }

    private func merged(_ stored: [String: String], with given: [String: String], for profile: ServiceProfile) throws -> [String: String] {
        let declared = Set(profile.secrets ?? [])
        var values = stored.filter { declared.contains($0.key) }
        for (name, value) in given where !value.isEmpty {
            guard declared.contains(name) else {
                throw FlotillaError.validation("secrets: '\(name.prefix(64))' is not one of the profile's secrets")
            }
            try ServiceProfile.checkSingleLine(value, field: "the secret '\(name)'")
            values[name] = value
        }
        return values
    }

    private func seal(_ values: [String: String]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try secrets.seal(String(decoding: try encoder.encode(values), as: UTF8.self))
    }

    private func saveVersion(_ number: Int, of record: ServiceProfileRecord, document: String, on database: any Database) async throws {
        let version = ServiceProfileVersion()
        version.profileID = try record.requireID()
        version.version = number
        version.document = document
        version.author = actor.name ?? "system"
        try await version.create(on: database)
    }

    private func audit(_ action: String, _ details: String) async {
        await AuditLog.record(.operation, action: action, result: .success, details: details, by: actor, on: database, logger: logger)
    }
}

extension Request {
    var serviceProfiles: ServiceProfiles {
        ServiceProfiles(database: db, secrets: application.flotilla.secrets, actor: auditActor, logger: logger)
    }
}
