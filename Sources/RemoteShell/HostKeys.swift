import Crypto
import Foundation
import NIOSSH

/// A server's public host key.
public struct SSHHostKey: Sendable, Hashable, CustomStringConvertible {
    /// The key in OpenSSH public key form: `ssh-ed25519 AAAA...`.
    public let openSSHPublicKey: String
    /// The OpenSSH fingerprint of the key, `SHA256:` followed by unpadded base64, as `ssh-keygen -l` prints it.
    public let fingerprint: String

    /// Parses `type base64` (an optional trailing comment is ignored).
    public init(openSSHPublicKey text: String) throws {
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count >= 2, let blob = Data(base64Encoded: String(fields[1])) else {
            throw RemoteShellError(.hostKeyStore, host: "", message: "malformed public key \"\(text)\"")
        }
        openSSHPublicKey = "\(fields[0]) \(fields[1])"
        fingerprint = "SHA256:" + Data(SHA256.hash(data: blob)).base64EncodedString().replacing("=", with: "")
    }

    init(_ key: NIOSSHPublicKey) throws {
        try self.init(openSSHPublicKey: String(openSSHPublicKey: key))
    }

    public var description: String { fingerprint }
}

/// Where pinned host keys live. RemoteShell trusts a host's key on first use and pins it;
/// afterwards any other key from that host is a hard `.hostKeyMismatch` error.
///
/// Host names are given as OpenSSH writes them in known_hosts: `host` for port 22, `[host]:port` otherwise.
public protocol HostKeyStore: Sendable {
    /// Pins `key` for `host` unless a key is pinned already, and returns the key pinned after the
    /// call. One atomic step, so that concurrent first connections cannot pin different keys.
    func pinIfAbsent(_ key: SSHHostKey, for host: String) async throws -> SSHHostKey
    /// Removes the pin for `host`, for when a machine is knowingly re-created with a new key.
    func forget(host: String) async throws
}

/// A host key store that lives as long as the process.
public actor InMemoryHostKeyStore: HostKeyStore {
    private var pinned: [String: SSHHostKey]

    public init(pinned: [String: SSHHostKey] = [:]) {
        self.pinned = pinned
    }

    public func pinIfAbsent(_ key: SSHHostKey, for host: String) -> SSHHostKey {
        if let existing = pinned[host] { return existing }
        pinned[host] = key
        return key
    }

    public func forget(host: String) {
        pinned[host] = nil
    }

    /// The key pinned for `host`, if any.
    public func pinnedKey(for host: String) -> SSHHostKey? {
        pinned[host]
    }
}

/// A host key store in a known_hosts-style file (`name keytype base64` per line).
///
/// The file is re-read on every lookup so that edits by other processes are seen, and replaced
/// atomically (temporary file, fsync, rename) so that a crash never leaves it half written.
/// Lines it does not understand (comments, hashed names, markers) are kept as they are.
public actor FileHostKeyStore: HostKeyStore {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public func pinIfAbsent(_ key: SSHHostKey, for host: String) throws -> SSHHostKey {
        let lines = try readLines()
        if let existing = try lines.lazy.compactMap({ try Self.key(in: $0, for: host) }).first {
            return existing
        }
        try writeAtomically(lines + ["\(host) \(key.openSSHPublicKey)"])
        return key
    }

    public func forget(host: String) throws {
        let lines = try readLines()
        let kept = try lines.filter { try Self.key(in: $0, for: host) == nil }
        if kept.count != lines.count {
            try writeAtomically(kept)
        }
    }

    /// The key pinned for `host`, if any.
    public func pinnedKey(for host: String) throws -> SSHHostKey? {
        try readLines().lazy.compactMap { try Self.key(in: $0, for: host) }.first
    }

    private static func key(in line: String, for host: String) throws -> SSHHostKey? {
        let fields = line.split(whereSeparator: \.isWhitespace)
        guard fields.count >= 3, fields[0].split(separator: ",").contains(Substring(host)) else { return nil }
        return try SSHHostKey(openSSHPublicKey: "\(fields[1]) \(fields[2])")
    }

    private func readLines() throws -> [String] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
                .split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        } catch {
            throw storeError("cannot read \(path): \(error)")
        }
    }

    private func writeAtomically(_ lines: [String]) throws {
        let temporaryPath = path + ".tmp-\(UUID().uuidString)"
        let contents = Array(lines.map { $0 + "\n" }.joined().utf8)
        let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw storeError("cannot create \(temporaryPath): errno \(errno)") }
        var written = 0
        while written < contents.count {
            let result = contents[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard result > 0 else {
                close(descriptor)
                unlink(temporaryPath)
                throw storeError("cannot write \(temporaryPath): errno \(errno)")
            }
            written += result
        }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard synced, rename(temporaryPath, path) == 0 else {
            unlink(temporaryPath)
            throw storeError("cannot replace \(path): errno \(errno)")
        }
    }

    private func storeError(_ message: String) -> RemoteShellError {
        RemoteShellError(.hostKeyStore, host: "", message: message)
    }
}
