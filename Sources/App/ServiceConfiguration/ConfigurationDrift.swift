import Crypto
import Fluent
import Foundation
import Vapor

/// The drift check (SPEC CFG-4): each file Flotilla applied is compared, by SHA-256, with the file
/// on the guest now. On demand (API, page) and daily, led by one instance (`app.periodic`).
struct ConfigurationDrift {
    let database: any Database
    let operations: VMOperations
    let actor: AuditLog.Actor
    let logger: Logger

    static let periodicTask = "config-drift"

    struct FileState: Content {
        var vmID: UUID
        var vm: String
        var path: String
        var profile: String
        var version: Int
        var appliedAt: Date
        /// `same`, `changed`, `missing` or `unreachable`.
        var state: String
        var detail: String?
    }

    static func register(on app: Application) throws {
        try app.periodic.register(name: periodicTask, interval: .seconds(24 * 3600)) { context in
            let drift = ConfigurationDrift(
                database: context.database, operations: app.flotilla.vmOperations, actor: .system, logger: context.logger)
            _ = try await drift.check()
        }
    }

    static func digest(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Checks every applied file (of one environment when given); audits each drifted VM once.
    func check(environmentID: UUID? = nil) async throws -> [FileState] {
        let rows = try await AppliedConfigurationFile.query(on: database).sort(\.$path).all()
        let profiles = Dictionary(
            try await ServiceProfileRecord.query(on: database).all().map { ($0.id ?? UUID(), $0.name) },
            uniquingKeysWith: { first, _ in first })
        var states: [FileState] = []
        for (vmID, files) in Dictionary(grouping: rows, by: \.vmID).sorted(by: { $0.key.uuidString < $1.key.uuidString }) {
            try Task.checkCancellation()
            guard let vm = try await VM.query(on: database).filter(\.$id == vmID).with(\.$role).first() else { continue }
            if let environmentID, vm.$environment.id != environmentID { continue }
            var digests: [String: String?] = [:]
            var unreachable: String?
            do {
                let target = try await operations.login.target(for: vm, user: vm.role.sshUser)
                digests = try await GuestConfigFiles(shell: operations.shell, target: target).digests(files.map(\.path))
            } catch {
                unreachable = FlotillaError.describe(error)
            }
            var drifted: [String] = []
            for file in files {
                let state: String
                switch digests[file.path] {
                case .none: state = "unreachable"
                case .some(.none): state = "missing"
                case .some(.some(let digest)): state = digest == file.sha256 ? "same" : "changed"
                }
                if state == "changed" || state == "missing" { drifted.append("\(file.path) \(state)") }
                if unreachable == nil {
                    file.drift = state == "same" ? nil : state
                    file.driftCheckedAt = Date()
                    try await file.save(on: database)
                }
                states.append(
                    FileState(
                        vmID: vmID, vm: vm.hostName, path: file.path, profile: profiles[file.profileID] ?? "?", version: file.version,
                        appliedAt: file.appliedAt, state: state, detail: state == "unreachable" ? unreachable : nil))
            }
            if !drifted.isEmpty {
                await AuditLog.record(
                    .error, action: "config.drift", result: .failure,
                    details: "\(vm.hostName): differs from what was last applied: \(drifted.joined(separator: ", "))", vmName: vm.hostName,
                    vmRole: vm.role.name, by: actor, on: database, logger: logger)
            }
        }
        return states
    }
}
