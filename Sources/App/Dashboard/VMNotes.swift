import Fluent
import Vapor

/// A VM's notes (SPEC VM-14): free text beside the VM, for the people who run it.
struct VMNotes {
    let database: any Database
    let actor: AuditLog.Actor
    let logger: Logger

    static let maximumLength = 2000

    func set(_ id: UUID, notes: String) async throws {
        guard notes.count <= Self.maximumLength else {
            throw FlotillaError.validation("notes have at most \(Self.maximumLength) characters")
        }
        guard let vm = try await VM.query(on: database).filter(\.$id == id).with(\.$role).first() else {
            throw FlotillaError.notFound("no such VM")
        }
        guard vm.notes != notes else { return }
        vm.notes = notes
        try await vm.save(on: database)
        await AuditLog.record(
            .operation, action: "vm.notes", result: .success, details: "changed the notes of \(vm.hostName)",
            vmName: vm.hostName, vmRole: vm.role.name, by: actor, on: database, logger: logger)
    }
}

extension Request {
    var vmNotes: VMNotes { VMNotes(database: db, actor: auditActor, logger: logger) }
}
