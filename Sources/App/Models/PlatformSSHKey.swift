import Fluent
import Foundation

/// One of the installation's own SSH key pairs, with which the platform logs in to guests
/// (SPEC BEY-9). The newest key that is not retired is the active one: new VMs get it. A key is
/// retired by rotation once no VM trusts it any more; its private half is then erased.
final class PlatformSSHKey: Model, @unchecked Sendable {
    static let schema = "platform_ssh_keys"

    @ID(key: .id) var id: UUID?
    /// The public half as an `authorized_keys` line (`ssh-ed25519 AAAA… flotilla`).
    @Field(key: "public_key") var publicKey: String
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    @Field(key: "fingerprint") var fingerprint: String
    /// The OpenSSH private key file, sealed with `SecretBox`; nil once retired.
    @OptionalField(key: "private_key_sealed") var privateKeySealed: String?
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @OptionalField(key: "retired_at") var retiredAt: Date?

    init() {}
}
