import Fluent
import Foundation

/// The last step of deleting an environment: its record goes once its VMs are gone.
struct EnvironmentRecordDeleteStep: StepKind {
    struct Parameters: Codable, Sendable {
        var environmentID: UUID
        var name: String
    }

    static let name = "environment.delete"
    /// Deleting a record already gone does nothing.
    static let rerunRule = RerunRule.idempotent

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        let database = context.database
        guard try await VM.query(on: database).filter(\.$environment.$id == parameters.environmentID).count() == 0 else {
            throw FlotillaError.conflict("environment \(parameters.name) still has VMs")
        }
        try await Environment.query(on: database).filter(\.$id == parameters.environmentID).delete()
    }
}

extension VMOperations {
    /// Removes the environment's record after every step of earlier phases (its VMs' deletion).
    func environmentRecordStep(_ environment: Environment, phase: Int) throws -> StepPlan {
        try StepPlan(
            EnvironmentRecordDeleteStep.self, .init(environmentID: try environment.requireID(), name: environment.name),
            title: "delete environment \(environment.name)", phase: phase)
    }
}
