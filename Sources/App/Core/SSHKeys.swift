import Fluent
import Vapor

/// The platform's SSH keys as people see and rotate them (SPEC BEY-9): the key pairs
/// themselves live in `PlatformKeys`, the per-VM work in `VMOperations.moveToKey`.
struct SSHKeys {
    let database: any Database
    let keys: PlatformKeys
    let jobs: JobEngine
    let operations: VMOperations
    let actor: AuditLog.Actor
    let logger: Logger

    /// One key as shown: never its private half.
    struct Row: Content {
        var id: UUID
        var fingerprint: String
        var publicKey: String
        var createdAt: Date?
        var retiredAt: Date?
        var active: Bool
        /// How many VMs trust this key.
        var vms: Int
    }

    /// Every key, newest first; the active one is made if there is none yet.
    func list() async throws -> [Row] {
        let active = try await keys.active()
        var rows: [Row] = []
        for key in try await keys.all() {
            let id = try key.requireID()
            rows.append(
                Row(
                    id: id, fingerprint: key.fingerprint, publicKey: key.publicKey, createdAt: key.createdAt, retiredAt: key.retiredAt,
                    active: id == active.id, vms: try await VM.query(on: database).filter(\.$platformKeyID == id).count()))
        }
        return rows
    }

    /// Makes a new key pair, which new VMs get from now on, and starts a job with one step per
    /// VM that moves the VM to it; a last step retires the keys no VM trusts any more. A VM that
    /// cannot be reached fails its step and keeps the old key until a later rotation.
    func rotate() async throws -> (key: Row, jobID: UUID) {
        let key = try await keys.generate()
        let keyID = try key.requireID()
        let vms = try await VM.query(on: database).filter(\.$hostKey != nil).filter(\.$platformKeyID != nil)
            .filter(\.$platformKeyID != keyID).with(\.$role).sort(\.$hostName).all()
        var steps = try vms.map { try operations.keyRotationStep($0, to: key) }
        steps.append(try StepPlan(RetireUnusedKeysStep.self, .init(), title: "retire the keys no VM trusts", phase: 1))
        let jobID = try await jobs.submit(
            kind: "ssh-key.rotate", title: "Rotate the platform SSH key to \(key.fingerprint)", by: actor,
            steps: steps)
        await AuditLog.record(
            .operation, action: "settings.ssh-key.rotate", result: .success,
            details: "new platform key \(key.fingerprint); moving \(vms.count) VMs to it", by: actor, on: database,
            logger: logger)
        return (
            Row(
                id: keyID, fingerprint: key.fingerprint, publicKey: key.publicKey, createdAt: key.createdAt, retiredAt: nil,
                active: true, vms: 0), jobID
        )
    }
}

extension Application {
    /// The SSH key service for a command or a request, acting as `actor`.
    func sshKeys(actor: AuditLog.Actor) -> SSHKeys {
        SSHKeys(
            database: db, keys: PlatformKeys(database: db, secrets: flotilla.secrets), jobs: flotilla.jobs,
            operations: flotilla.vmOperations, actor: actor, logger: logger)
    }
}

extension Request {
    var sshKeys: SSHKeys {
        let flotilla = application.flotilla
        return SSHKeys(
            database: db, keys: PlatformKeys(database: db, secrets: flotilla.secrets), jobs: flotilla.jobs,
            operations: flotilla.vmOperations, actor: auditActor, logger: logger)
    }
}
