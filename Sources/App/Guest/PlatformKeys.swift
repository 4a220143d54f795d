import Fluent
import Foundation
import RemoteShell

/// The installation's own SSH key pairs (SPEC BEY-9): the platform logs in to guests with
/// these, never with a VM's password. The active key is made on first start; `rotate` in
/// `SSHKeys` makes a new one and moves every VM to it.
struct PlatformKeys: Sendable {
    let database: any Database
    let secrets: SecretBox

    /// The key new VMs get: the newest one not retired, generated when there is none yet.
    func active() async throws -> PlatformSSHKey {
        if let key = try await newestUsable() { return key }
        return try await generate()
    }

    /// Makes a new key pair, which becomes the active key.
    func generate() async throws -> PlatformSSHKey {
        let key = SSHPrivateKey.generateEd25519()
        let record = PlatformSSHKey()
        record.publicKey = key.publicKeyLine + " " + Self.comment
        record.fingerprint = key.publicKeyFingerprint
        record.privateKeySealed = try secrets.seal(try key.openSSHFileContents(comment: Self.comment))
        try await record.create(on: database)
        return record
    }

    /// The private half of `record`, for logging in.
    func privateKey(_ record: PlatformSSHKey) throws -> SSHPrivateKey {
        guard let sealed = record.privateKeySealed else {
            throw FlotillaError(.unavailable, "platform key \(record.fingerprint) is retired")
        }
        return try SSHPrivateKey(openSSHFileContents: try secrets.open(sealed))
    }

    /// The key `vm`'s guest trusts.
    func key(of vm: VM) async throws -> PlatformSSHKey {
        guard let id = vm.platformKeyID, let record = try await PlatformSSHKey.find(id, on: database) else {
            throw FlotillaError.conflict("\(vm.hostName) has no platform key installed; adopt it again to install one")
        }
        return record
    }

    /// Retires every key but the active one that no VM trusts any more, erasing its private half.
    func retireUnused() async throws -> [PlatformSSHKey] {
        guard let active = try await newestUsable() else { return [] }
        var retired: [PlatformSSHKey] = []
        for record in try await PlatformSSHKey.query(on: database).filter(\.$retiredAt == nil).all() where record.id != active.id {
            let id = try record.requireID()
            guard try await VM.query(on: database).filter(\.$platformKeyID == id).count() == 0 else { continue }
            record.retiredAt = Date()
            record.privateKeySealed = nil
            try await record.save(on: database)
            retired.append(record)
        }
        return retired
    }

    /// Every key, newest first.
    func all() async throws -> [PlatformSSHKey] {
        try await PlatformSSHKey.query(on: database).sort(\.$createdAt, .descending).all()
    }

    /// The comment on the public key in guests' `authorized_keys`, so people know whose it is.
    static let comment = "flotilla-platform"

    private func newestUsable() async throws -> PlatformSSHKey? {
        try await PlatformSSHKey.query(on: database).filter(\.$retiredAt == nil).sort(\.$createdAt, .descending).first()
    }
}
