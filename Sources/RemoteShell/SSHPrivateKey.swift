import Crypto
import Foundation
import NIOSSH

/// A client private key for public-key authentication, read from an unencrypted OpenSSH key
/// file (`-----BEGIN OPENSSH PRIVATE KEY-----`, as written by `ssh-keygen`).
///
/// swift-nio-ssh has no key-file loader, so the OpenSSH container format is parsed here.
/// Supported: ed25519 and ECDSA (nistp256/384/521). Passphrase-protected keys are refused with
/// a clear error rather than prompting or guessing.
public struct SSHPrivateKey: Sendable {
    let nioKey: NIOSSHPrivateKey

    /// The public half in `authorized_keys` form (`ssh-ed25519 AAAA...`).
    public var publicKeyLine: String { String(openSSHPublicKey: nioKey.publicKey) }

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
        nioKey = try Self.readKey(from: &section)
    }

    private static func readKey(from section: inout SSHWireReader) throws -> NIOSSHPrivateKey {
        let keyType = try section.readString()
        switch keyType {
        case "ssh-ed25519":
            _ = try section.readBlob()  // 32-byte public key.
            let secretAndPublic = try section.readBlob()
            guard secretAndPublic.count == 64 else { throw invalid("ed25519 secret has \(secretAndPublic.count) bytes, expected 64") }
            return NIOSSHPrivateKey(ed25519Key: try Curve25519.Signing.PrivateKey(rawRepresentation: secretAndPublic.prefix(32)))
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
