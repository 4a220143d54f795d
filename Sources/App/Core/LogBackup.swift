import Fluent
import Foundation

/// Writes the audit log (or a search of it) to timestamped UTF-8 text files (SPEC LOG-5),
/// keeping only the newest few (review finding 12: backups must not fill the disk).
public struct LogBackup: Sendable {
    public struct File: Sendable, Equatable {
        public var name: String
        public var size: Int
        public var modified: Date
    }

    public let directory: String
    public let displayTime: DisplayTime
    /// How many backups are kept; older ones are deleted after each new one.
    public let keep: Int

    public init(directory: String, displayTime: DisplayTime, keep: Int = FlotillaConfig.defaultBackupKeep) {
        self.directory = directory
        self.displayTime = displayTime
        self.keep = keep
    }

    /// The backups as configured (`FLOTILLA_BACKUP_DIR`, `FLOTILLA_BACKUP_KEEP`).
    public init(config: FlotillaConfig) {
        self.init(directory: config.backupDirectory, displayTime: DisplayTime(timeZone: config.displayTimeZone), keep: config.backupKeep)
    }

    /// Backup file names are made here and nothing else is served, so a name from a URL can
    /// never reach outside the backup directory.
    static func isBackupName(_ name: String) -> Bool {
        name.wholeMatch(of: /flotilla-logs-\d{8}-\d{6}(-\d{1,4})?\.txt/) != nil
    }

    /// Writes every entry matching the search, oldest first; returns the file and the count.
    public func write(_ search: LogSearch, by actor: AuditLog.Actor, on database: any Database) async throws -> (File, Int) {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let now = Date()
        let stamp = now.formatted(
            Date.VerbatimFormatStyle(
                format:
                    "\(year: .defaultDigits)\(month: .twoDigits)\(day: .twoDigits)-\(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased))\(minute: .twoDigits)\(second: .twoDigits)",
                timeZone: .gmt, calendar: Calendar(identifier: .gregorian)))
        // Numbered after the newest of the same second, never reusing a pruned name, so the
        // new backup is always the newest by name.
        let sameSecond = try FileManager.default.contentsOfDirectory(atPath: directory).filter(Self.isBackupName)
            .map(Self.age).filter { $0.0 == stamp }.map(\.1)
        let number = (sameSecond.max() ?? 0) + 1
        let name = number == 1 ? "flotilla-logs-\(stamp).txt" : "flotilla-logs-\(stamp)-\(number).txt"
        let finalPath = path(of: name)
        let partialPath = finalPath + ".partial"
        guard FileManager.default.createFile(atPath: partialPath, contents: nil, attributes: [.posixPermissions: 0o640]),
            let handle = FileHandle(forWritingAtPath: partialPath)
        else {
            // No path in the message: ordinary administrators may back up, and see this.
            throw FlotillaError(.unavailable, "cannot write to the backup directory (FLOTILLA_BACKUP_DIR)")
        }
        var count = 0
        do {
            defer { try? handle.close() }
            let header = """
                # Flotilla audit log backup
                # written \(displayTime.string(now)) by \(actor.name ?? "unknown")
                # selection: \(search.summary)
                # columns: number, time, kind, VM name, VM role, operator, operator IP, action, result, details

                """
            try handle.write(contentsOf: Data(header.utf8))
            var lastID = 0
            while true {
                let batch = try await search.apply(to: LogEntry.query(on: database))
                    .filter(\.$id > lastID)
                    .sort(\.$id, .ascending)
                    .limit(2000)
                    .all()
                guard let last = batch.last else { break }
                lastID = try last.requireID()
                var text = ""
                for entry in batch {
                    let fields: [String] = [
                        "#\(entry.id ?? 0)", displayTime.plain(entry.time), entry.kind, entry.vmName ?? "-",
                        entry.vmRole ?? "-", entry.operatorName ?? "-", entry.operatorIP ?? "-",
                        entry.action, entry.result, entry.details,
                    ]
                    text += fields.map(Self.escape).joined(separator: "\t") + "\n"
                }
                try handle.write(contentsOf: Data(text.utf8))
                count += batch.count
            }
        } catch {
            try? FileManager.default.removeItem(atPath: partialPath)
            throw error
        }
        try FileManager.default.moveItem(atPath: partialPath, toPath: finalPath)
        let written = try file(named: name)
        try deleteAllButNewest()
        return (written, count)
    }

    /// Deletes every backup but the newest `keep`, ordered by the time in their names.
    private func deleteAllButNewest() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter(Self.isBackupName)
        for name in names.sorted(by: { Self.age($0) > Self.age($1) }).dropFirst(keep) {
            try FileManager.default.removeItem(atPath: path(of: name))
        }
    }

    /// A backup's time stamp and its number within that second, for sorting by age.
    private static func age(_ name: String) -> (String, Int) {
        guard let match = name.wholeMatch(of: /flotilla-logs-(\d{8}-\d{6})(?:-(\d{1,4}))?\.txt/) else { return ("", 0) }
        return (String(match.1), match.2.flatMap { Int($0) } ?? 1)
    }

    /// Earlier backups, newest first.
    public func list() throws -> [File] {
        guard FileManager.default.fileExists(atPath: directory) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter(Self.isBackupName)
            .map(file(named:))
            .sorted { ($0.modified, $0.name) > ($1.modified, $1.name) }
    }

    /// The full path of a listed backup, or nil for any other name.
    public func existingPath(of name: String) -> String? {
        guard Self.isBackupName(name) else { return nil }
        let full = path(of: name)
        return FileManager.default.fileExists(atPath: full) ? full : nil
    }

    private func path(of name: String) -> String {
        (directory as NSString).appendingPathComponent(name)
    }

    private func file(named name: String) throws -> File {
        let attributes = try FileManager.default.attributesOfItem(atPath: path(of: name))
        return File(
            name: name, size: (attributes[.size] as? NSNumber)?.intValue ?? 0,
            modified: attributes[.modificationDate] as? Date ?? Date(timeIntervalSince1970: 0))
    }

    /// One entry is one line: tabs, newlines and backslashes inside fields are escaped.
    private static func escape(_ field: String) -> String {
        var escaped = ""
        for character in field {
            switch character {
            case "\\": escaped += "\\\\"
            case "\t": escaped += "\\t"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
