import Crypto
import Foundation
import NIOSSH

/// A client private key for public-key authentication, read from an unencrypted OpenSSH key
/// file (`-----BEGIN OPENSSH PRIVATE KEY-----`, as written by `ssh-keygen`).
///
/// swift-nio-ssh has no key-file loader, so the OpenSSH container format is parsed here.
/// Supported: ed25519 and ECDSA (nistp256/384/521). Passphrase-protected keys are refused with
/// a clear error rather than prompting or guessing. New ed25519 keys can be generated and
/// written back in the same format (`openSSHFileContents`), e.g. to be sealed and stored.
public struct SSHPrivateKey: Sendable {
    let nioKey: NIOSSHPrivateKey
    /// The 32-byte ed25519 seed, kept so that the key can be written out again.
    private let ed25519Seed: [UInt8]?

    /// The public half in `authorized_keys` form (`ssh-ed25519 AAAA...`).
    public var publicKeyLine: String { String(openSSHPublicKey: nioKey.publicKey) }

    /// The public half's fingerprint as `ssh-keygen -l` prints it (`SHA256:...`).
    public var publicKeyFingerprint: String {
        (try? SSHHostKey(openSSHPublicKey: publicKeyLine).fingerprint) ?? ""
    }

    /// A new random ed25519 key.
    public static func generateEd25519() -> SSHPrivateKey {
        SSHPrivateKey(ed25519: Curve25519.Signing.PrivateKey())
    }

    private init(ed25519 key: Curve25519.Signing.PrivateKey) {
        nioKey = NIOSSHPrivateKey(ed25519Key: key)
        ed25519Seed = Array(key.rawRepresentation)
    }

    /// Reads and parses the key file at `path`.
    public init(contentsOfFile path: String) throws {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RemoteShellError(.invalidPrivateKey, host: "", message: "cannot read private key file \(path): \(error)")
        }
        try self.init(openSSHFileContents: text)
    }

    /// Parses the text of an OpenSSH private key file.
    public init(openSSHFileContents text: String) throws {
        let begin = "-----BEGIN OPENSSH PRIVATE KEY-----"
        let end = "-----END OPENSSH PRIVATE KEY-----"
        guard let beginRange = text.range(of: begin), let endRange = text.range(of: end),
            beginRange.upperBound <= endRange.lowerBound
        else {
            throw Self.invalid("not an OpenSSH private key (expected \(begin)); convert PEM keys with ssh-keygen -p -o")
        }
        let body = text[beginRange.upperBound..<endRange.lowerBound].filter { !$0.isWhitespace }
        guard let decoded = Data(base64Encoded: String(body)) else {
            throw Self.invalid("key body is not valid base64")
        }
        var file = SSHWireReader(Array(decoded))
        guard try file.readBytes(count: 15) == Array("openssh-key-v1\0".utf8) else {
            throw Self.invalid("missing openssh-key-v1 header")
        }
        let cipher = try file.readString()
        let kdf = try file.readString()
        guard cipher == "none", kdf == "none" else {
            throw Self.invalid("key is encrypted (cipher \(cipher), kdf \(kdf)); provide an unencrypted key")
        }
        _ = try file.readBlob()  // KDF options, empty when unencrypted.
        guard try file.readUInt32() == 1 else {
            throw Self.invalid("key files holding several keys are not supported")
        }
        _ = try file.readBlob()  // Public key, repeated inside the private section.
        var section = SSHWireReader(try file.readBlob())
        guard try section.readUInt32() == section.readUInt32() else {
            throw Self.invalid("check integers differ (corrupt or encrypted key)")
        }
        let keyType = try section.readString()
        if keyType == "ssh-ed25519" {
            _ = try section.readBlob()  // 32-byte public key.
            let secretAndPublic = try section.readBlob()
            guard secretAndPublic.count == 64 else { throw Self.invalid("ed25519 secret has \(secretAndPublic.count) bytes, expected 64") }
            self = SSHPrivateKey(ed25519: try Curve25519.Signing.PrivateKey(rawRepresentation: secretAndPublic.prefix(32)))
        } else {
            nioKey = try Self.readECDSAKey(type: keyType, from: &section)
            ed25519Seed = nil
        }
    }

    /// The key as an unencrypted OpenSSH private key file, as `ssh-keygen -N ''` writes it.
    /// Only ed25519 keys (those this type generates) can be written.
    public func openSSHFileContents(comment: String = "") throws -> String {
        guard let seed = ed25519Seed else { throw Self.invalid("only ed25519 keys can be written out") }
        let publicKey = Array(try Curve25519.Signing.PrivateKey(rawRepresentation: seed).publicKey.rawRepresentation)
        var publicBlob = SSHWireWriter()
        publicBlob.writeString("ssh-ed25519")
        publicBlob.writeBlob(publicKey)
        var section = SSHWireWriter()
        let check = UInt32.random(in: .min ... .max)
        section.writeUInt32(check)
        section.writeUInt32(check)
        section.writeString("ssh-ed25519")
        section.writeBlob(publicKey)
        section.writeBlob(seed + publicKey)
        section.writeString(comment)
        // Padded to the cipher block size (8 for "none") with 1, 2, 3, ...
        var padding: UInt8 = 1
        while section.bytes.count % 8 != 0 {
            section.bytes.append(padding)
            padding += 1
        }
        var file = SSHWireWriter()
        file.bytes = Array("openssh-key-v1\0".utf8)
        file.writeString("none")
        file.writeString("none")
        file.writeBlob([])
        file.writeUInt32(1)
        file.writeBlob(publicBlob.bytes)
        file.writeBlob(section.bytes)
        let body = Data(file.bytes).base64EncodedString()
        var lines = ["-----BEGIN OPENSSH PRIVATE KEY-----"]
        var start = body.startIndex
        while start < body.endIndex {
            let end = body.index(start, offsetBy: 70, limitedBy: body.endIndex) ?? body.endIndex
            lines.append(String(body[start..<end]))
            start = end
        }
        lines.append("-----END OPENSSH PRIVATE KEY-----")
        return lines.joined(separator: "\n") + "\n"
    }

    private static func readECDSAKey(type keyType: String, from section: inout SSHWireReader) throws -> NIOSSHPrivateKey {
        switch keyType {
        case "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521":
            _ = try section.readString()  // Curve name, implied by the key type.
            _ = try section.readBlob()  // Public point.
            let scalar = try section.readBlob().drop(while: { $0 == 0 })  // mpint: strip the sign byte.
            switch keyType {
            case "ecdsa-sha2-nistp256": return NIOSSHPrivateKey(p256Key: try .init(rawRepresentation: leftPadded(scalar, to: 32)))
            case "ecdsa-sha2-nistp384": return NIOSSHPrivateKey(p384Key: try .init(rawRepresentation: leftPadded(scalar, to: 48)))
            default: return NIOSSHPrivateKey(p521Key: try .init(rawRepresentation: leftPadded(scalar, to: 66)))
            }
        default:
            throw invalid("unsupported key type \(keyType) (use ed25519 or ECDSA; swift-nio-ssh has no RSA)")
        }
    }

    private static func leftPadded(_ bytes: ArraySlice<UInt8>, to length: Int) throws -> [UInt8] {
        guard bytes.count <= length else { throw invalid("ECDSA scalar longer than \(length) bytes") }
        return Array(repeating: 0, count: length - bytes.count) + bytes
    }

    private static func invalid(_ message: String) -> RemoteShellError {
        RemoteShellError(.invalidPrivateKey, host: "", message: message)
    }
}

/// Writes the SSH wire encoding (RFC 4251 §5): big-endian uint32 and length-prefixed strings.
struct SSHWireWriter {
    var bytes: [UInt8] = []

    mutating func writeUInt32(_ value: UInt32) {
        bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    mutating func writeBlob(_ blob: [UInt8]) {
        writeUInt32(UInt32(blob.count))
        bytes += blob
    }

    mutating func writeString(_ string: String) {
        writeBlob(Array(string.utf8))
    }
}

/// Reads the SSH wire encoding (RFC 4251 §5): big-endian uint32 and length-prefixed strings.
struct SSHWireReader {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: [UInt8]) { self.bytes = bytes[...] }

    mutating func readBytes(count: Int) throws -> [UInt8] {
        guard count >= 0, bytes.count >= count else {
            throw RemoteShellError(.invalidPrivateKey, host: "", message: "key data truncated")
        }
        defer { bytes = bytes.dropFirst(count) }
        return Array(bytes.prefix(count))
    }

    mutating func readUInt32() throws -> UInt32 {
        try readBytes(count: 4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func readBlob() throws -> [UInt8] {
        try readBytes(count: Int(readUInt32()))
    }

    mutating func readString() throws -> String {
        String(decoding: try readBlob(), as: UTF8.self)
    }
}
