import Foundation

/// Checks a release tarball before it goes anywhere near a guest (issue 12 §2): it must stay
/// under a size limit, and every entry must land inside the release directory — no absolute
/// paths, no `..`, no device files or FIFOs, no symlink or hard link leading out, and no entry
/// reached through a symlink (so the guest's `tar` resolves every path exactly as checked here).
enum ReleaseArchive {
    struct Summary: Sendable, Equatable {
        /// Size of the tarball itself.
        var archiveBytes: Int
        /// Regular files and their total size.
        var files: Int
        var contentBytes: Int
    }

    static func check(_ tarball: URL, limit: Int) throws -> Summary {
        let attributes = try FileManager.default.attributesOfItem(atPath: tarball.path)
        let archiveBytes = (attributes[.size] as? Int) ?? 0
        guard archiveBytes <= limit else {
            throw RepositoryError.unsafeArchive("the release is \(archiveBytes) bytes, over the limit of \(limit)")
        }
        let entries = try TarReader.entries(of: Data(contentsOf: tarball))
        var symlinks: Set<String> = []
        var files = 0
        var contentBytes = 0
        for entry in entries where entry.type == .symlink {
            symlinks.insert(try normalized(entry.path))
        }
        for entry in entries {
            let path = try normalized(entry.path)
            try requireNoSymlinkOnTheWay(path, symlinks: symlinks, entry: entry.path)
            switch entry.type {
            case .file:
                files += 1
                contentBytes += entry.size
                guard contentBytes <= limit else {
                    throw RepositoryError.unsafeArchive("the release unpacks to more than the limit of \(limit) bytes")
                }
            case .directory:
                break
            case .hardLink:
                let target = try normalized(entry.linkTarget)
                try requireNoSymlinkOnTheWay(target, symlinks: symlinks, entry: entry.path)
            case .symlink:
                try requireInside(symlink: path, target: entry.linkTarget, symlinks: symlinks)
            case .special:
                throw RepositoryError.unsafeArchive("\(entry.path) is a device file or FIFO")
            }
        }
        return Summary(archiveBytes: archiveBytes, files: files, contentBytes: contentBytes)
    }

    /// `path` as components relative to the release directory, refusing anything that could
    /// leave it.
    private static func normalized(_ path: String) throws -> String {
        guard !path.hasPrefix("/") else {
            throw RepositoryError.unsafeArchive("\(path) is an absolute path")
        }
        guard !path.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw RepositoryError.unsafeArchive("an entry name contains control characters")
        }
        let components = path.split(separator: "/").filter { $0 != "." }
        guard !components.contains("..") else {
            throw RepositoryError.unsafeArchive("\(path) leaves the release directory")
        }
        return components.joined(separator: "/")
    }

    private static func requireNoSymlinkOnTheWay(_ path: String, symlinks: Set<String>, entry: String) throws {
        var prefix = ""
        for component in path.split(separator: "/").dropLast() {
            prefix = prefix.isEmpty ? String(component) : prefix + "/" + component
            if symlinks.contains(prefix) {
                throw RepositoryError.unsafeArchive("\(entry) goes through the symlink \(prefix)")
            }
        }
    }

    /// A symlink's target, read from the link's own directory, must stay inside the release and
    /// never step through another symlink before its last component (`l -> .` then
    /// `m -> l/..` would otherwise leave it).
    private static func requireInside(symlink path: String, target: String, symlinks: Set<String>) throws {
        guard !target.isEmpty, !target.hasPrefix("/") else {
            throw RepositoryError.unsafeArchive("\(path) links to the absolute path \(target)")
        }
        var resolved = path.split(separator: "/").dropLast().map(String.init)
        let components = target.split(separator: "/").filter { $0 != "." }
        for (index, component) in components.enumerated() {
            if component == ".." {
                guard !resolved.isEmpty else {
                    throw RepositoryError.unsafeArchive("\(path) links out of the release directory")
                }
                resolved.removeLast()
            } else {
                resolved.append(String(component))
                if index < components.count - 1, symlinks.contains(resolved.joined(separator: "/")) {
                    throw RepositoryError.unsafeArchive("\(path) links through the symlink \(resolved.joined(separator: "/"))")
                }
            }
        }
    }
}

/// The entries of a POSIX (ustar/pax) or GNU tar file, as far as the release check needs them.
enum TarReader {
    enum EntryType: Equatable {
        case file, directory, symlink, hardLink, special
    }

    struct Entry: Equatable {
        var path: String
        var type: EntryType
        var size: Int
        var linkTarget: String
    }

    static func entries(of data: Data) throws -> [Entry] {
        let bytes = [UInt8](data)
        var entries: [Entry] = []
        var offset = 0
        var longPath: String?
        var longLink: String?
        while offset + 512 <= bytes.count {
            let header = bytes[offset..<offset + 512]
            if header.allSatisfy({ $0 == 0 }) { break }
            let size = try number(header, at: 124, length: 12)
            let typeFlag = header[header.startIndex + 156]
            let bodyStart = offset + 512
            let bodyEnd = bodyStart + size
            guard size >= 0, bodyEnd <= bytes.count else {
                throw RepositoryError.unsafeArchive("the tarball is truncated")
            }
            let body = bytes[bodyStart..<bodyEnd]
            offset = bodyStart + (size + 511) / 512 * 512
            switch typeFlag {
            case UInt8(ascii: "x"):
                let records = try paxRecords(body)
                longPath = records["path"] ?? longPath
                longLink = records["linkpath"] ?? longLink
                continue
            case UInt8(ascii: "g"):
                continue
            case UInt8(ascii: "L"):
                longPath = string(body)
                continue
            case UInt8(ascii: "K"):
                longLink = string(body)
                continue
            default:
                break
            }
            var path = string(header, at: 0, length: 100)
            let prefix = string(header, at: 345, length: 155)
            if String(decoding: header[header.startIndex + 257..<header.startIndex + 262], as: UTF8.self) == "ustar",
                !prefix.isEmpty
            {
                path = prefix + "/" + path
            }
            let type: EntryType =
                switch typeFlag {
                case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): .file
                case UInt8(ascii: "5"): .directory
                case UInt8(ascii: "2"): .symlink
                case UInt8(ascii: "1"): .hardLink
                default: .special
                }
            entries.append(
                Entry(
                    path: longPath ?? path, type: type, size: type == .file ? size : 0,
                    linkTarget: longLink ?? string(header, at: 157, length: 100)))
            longPath = nil
            longLink = nil
        }
        return entries
    }

    private static func string(_ bytes: ArraySlice<UInt8>, at start: Int = 0, length: Int? = nil) -> String {
        let from = bytes.startIndex + start
        let to = length.map { min(from + $0, bytes.endIndex) } ?? bytes.endIndex
        let field = bytes[from..<to]
        let end = field.firstIndex(of: 0) ?? field.endIndex
        return String(decoding: field[from..<end], as: UTF8.self)
    }

    /// An octal size field, or GNU's base-256 form (high bit set) for large files.
    private static func number(_ header: ArraySlice<UInt8>, at start: Int, length: Int) throws -> Int {
        let field = header[header.startIndex + start..<header.startIndex + start + length]
        if let first = field.first, first & 0x80 != 0 {
            return field.dropFirst().reduce(Int(first & 0x7f)) { ($0 << 8) | Int($1) }
        }
        let text = String(decoding: field.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        guard let value = Int(text.isEmpty ? "0" : text, radix: 8) else {
            throw RepositoryError.unsafeArchive("the tarball has a malformed header")
        }
        return value
    }

    /// `length key=value\n` records of a pax extended header, read by their length prefix so a
    /// value containing a newline cannot hide the rest of itself.
    private static func paxRecords(_ body: ArraySlice<UInt8>) throws -> [String: String] {
        var records: [String: String] = [:]
        var index = body.startIndex
        while index < body.endIndex, body[index] != 0 {
            guard let space = body[index...].firstIndex(of: UInt8(ascii: " ")),
                let length = Int(String(decoding: body[index..<space], as: UTF8.self)),
                length > space - index, index + length <= body.endIndex
            else {
                throw RepositoryError.unsafeArchive("the tarball has a malformed pax header")
            }
            let record = body[(space + 1)..<(index + length - 1)]
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                records[String(decoding: record[..<equals], as: UTF8.self)] = String(
                    decoding: record[(equals + 1)...], as: UTF8.self)
            }
            index += length
        }
        return records
    }
}
