import Crypto
import Foundation

/// Seals secrets (vSphere and VM passwords) with AES-GCM under a key kept outside the
/// database (SPEC BEY-5): `FLOTILLA_SECRET_KEY`, or a key file in the data directory that is
/// created with mode 0600 on first start. A database backup alone reveals no secret.
public struct SecretBox: Sendable {
    private let key: SymmetricKey

    public init(key: SymmetricKey) {
        self.key = key
    }

    /// Loads the key from its base64 text, or from (or into) the key file.
    public static func load(base64Key: String?, keyFile: String) throws -> SecretBox {
        if let base64Key {
            guard let data = Data(base64Encoded: base64Key), data.count == 32 else {
                throw ConfigError(setting: "FLOTILLA_SECRET_KEY", problem: "must be 32 bytes in base64 (e.g. `openssl rand -base64 32`)")
            }
            return SecretBox(key: SymmetricKey(data: data))
        }
        if let text = try? String(contentsOfFile: keyFile, encoding: .utf8) {
            guard let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), data.count == 32 else {
                throw ConfigError(setting: "FLOTILLA_SECRET_KEY", problem: "the key file \(keyFile) does not hold a 32-byte base64 key")
            }
            return SecretBox(key: SymmetricKey(data: data))
        }
        let key = SymmetricKey(size: .bits256)
        let text = key.withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
        guard FileManager.default.createFile(atPath: keyFile, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ConfigError(setting: "FLOTILLA_DATA_DIR", problem: "cannot create the secret key file \(keyFile)")
        }
        return SecretBox(key: key)
    }

    public func seal(_ secret: String) throws -> String {
        try AES.GCM.seal(Data(secret.utf8), using: key).combined.map { $0.base64EncodedString() } ?? ""
    }

    public func open(_ sealed: String) throws -> String {
        guard let data = Data(base64Encoded: sealed) else { throw FlotillaError(.unavailable, "a stored secret is damaged") }
        do {
            let box = try AES.GCM.SealedBox(combined: data)
            return String(decoding: try AES.GCM.open(box, using: key), as: UTF8.self)
        } catch {
            throw FlotillaError(.unavailable, "a stored secret cannot be opened: the secret key does not match the database")
        }
    }
}
