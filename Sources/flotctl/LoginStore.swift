import Foundation

/// What `flotctl login` keeps: the server and an API token (a secret, so the file is the
/// user's alone).
struct StoredLogin: Codable, Equatable {
    /// The server's base URL, e.g. `https://flotilla.example.com`.
    var server: String
    var username: String
    var token: String
    /// The token's ID, so `logout` can revoke it.
    var tokenID: String?
    /// A PEM file of the certificate authorities to trust for an https server instead of the system's.
    var caFile: String?
}

/// The login file `$XDG_CONFIG_HOME/flotilla/client.json` (else `~/.config/flotilla/client.json`),
/// mode 0600 in a 0700 folder. A file others could read is refused, as ssh refuses such a key.
enum LoginStore {
    static var file: URL {
        let environment = ProcessInfo.processInfo.environment
        let base: URL
        if let configured = environment["XDG_CONFIG_HOME"], configured.hasPrefix("/") {
            base = URL(fileURLWithPath: configured)
        } else {
            base = URL(fileURLWithPath: environment["HOME"] ?? NSHomeDirectory()).appendingPathComponent(".config")
        }
        return base.appendingPathComponent("flotilla").appendingPathComponent("client.json")
    }

    static func load() throws -> StoredLogin {
        let path = file.path
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw ClientFailure(.refused, "not logged in (no \(path)): run `flotctl login URL` first")
        }
        guard status.st_uid == getuid() else {
            throw ClientFailure(.failed, "\(path) belongs to another user; log in again to make your own")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw ClientFailure(
                .failed,
                "\(path) holds an API token but others may read it (mode \(String(status.st_mode & 0o777, radix: 8))): "
                    + "run `chmod 600 \(path)`, and revoke the token if others could have read it")
        }
        do {
            return try JSONDecoder().decode(StoredLogin.self, from: try Data(contentsOf: file))
        } catch {
            throw ClientFailure(.failed, "\(path) cannot be read (\(error.localizedDescription)): log in again")
        }
    }

    /// Writes the file whole under a temporary name created 0600, then renames it over the old one,
    /// so the token is never in a file others can read, not even for a moment.
    static func save(_ login: StoredLogin) throws {
        let folder = file.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(login)
        let temporary = folder.appendingPathComponent(".client.json.\(getpid())").path
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw ClientFailure(.failed, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == data.count, synced, rename(temporary, file.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw ClientFailure(.failed, "cannot write \(file.path): \(reason)")
        }
    }

    static func remove() throws {
        guard unlink(file.path) == 0 || errno == ENOENT else {
            throw ClientFailure(.failed, "cannot remove \(file.path): \(String(cString: strerror(errno)))")
        }
    }
}
