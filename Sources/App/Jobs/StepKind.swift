import Fluent
import Foundation
import Logging

/// What the engine does with a step whose run was cut off midway (its instance died or shut
/// down): every kind declares it, because only the kind knows whether running it twice is safe.
enum RerunRule: Sendable, Equatable {
    /// Running it again does no harm: it is simply queued again.
    case idempotent
    /// Queued again, and the kind checks what the first run left before acting
    /// (`StepContext.isRerun`), e.g. adopts a VM already cloned instead of cloning twice.
    case rerunAfterCheck
    /// A person must look first: the step ends as "needs attention" with this reason.
    case needsAttention(String)
}

/// One kind of job step (SPEC BEY-8): a name stored in each step's row, parameters stored
/// beside it as JSON, and the work. Any instance runs any step from its row alone, so a kind
/// keeps nothing in memory between submission and execution. Adding a kind is one file with a
/// type conforming to this, plus its line in `StepRegistry.standard`.
protocol StepKind: Sendable {
    /// Everything the step needs, as stored in its row. Secrets go in sealed (`SecretBox`).
    associatedtype Parameters: Codable & Sendable

    /// The kind's stored name, e.g. `vm.create`; also the action of its audit entries.
    static var name: String { get }
    static var rerunRule: RerunRule { get }
    /// How often the step is tried when it fails (more than 1 only for kinds safe to repeat).
    static var attemptsOnFailure: Int { get }
    /// The pause before the n-th retry is this times n.
    static var retryDelay: Duration { get }

    func execute(_ parameters: Parameters, context: StepContext) async throws
    /// The action named in the step's audit entry.
    func auditAction(_ parameters: Parameters) -> String
}

extension StepKind {
    static var attemptsOnFailure: Int { 1 }
    static var retryDelay: Duration { .seconds(2) }
    func auditAction(_ parameters: Parameters) -> String { Self.name }
}

/// What a running step may use besides its parameters: the services that do the work, its
/// log, and whether an earlier run of it was cut off.
struct StepContext: Sendable {
    let stepID: UUID
    let database: any Database
    let logger: Logger
    let operations: VMOperations
    /// True when this step already ran (or began to) before: kinds with `.rerunAfterCheck`
    /// look at what that run left.
    let isRerun: Bool

    /// Appends a line to the step's log (followed live on the job page, from any instance).
    func log(_ line: String) async {
        await JobStepRows.appendLog(stepID, line, on: database, logger: logger)
    }
}

/// A step as a service plans it: its kind and encoded parameters, and where it stands in the
/// job. Stored as is; the kind's executor runs it later, on whichever instance claims it.
struct StepPlan: Sendable {
    var kind: String
    /// The parameters as JSON text.
    var parameters: String
    var title: String
    var vmName: String?
    var vmRole: String?
    /// Steps of one phase run in parallel; a phase starts when the previous one succeeded.
    var phase: Int
    /// The vSphere connection the step works on, for the per-connection limit.
    var connectionID: UUID?

    init<Kind: StepKind>(
        _ kind: Kind.Type, _ parameters: Kind.Parameters, title: String, vmName: String? = nil, vmRole: String? = nil,
        phase: Int = 0, connectionID: UUID? = nil
    ) throws {
        self.kind = Kind.name
        self.parameters = try StepRegistry.encode(parameters)
        self.title = title
        self.vmName = vmName
        self.vmRole = vmRole
        self.phase = phase
        self.connectionID = connectionID
    }
}

/// Why a step row cannot run here; it then ends as "needs attention" with this reason.
struct UnrunnableStep: Error, Sendable {
    let reason: String
}

/// The kinds this instance can run, by name.
struct StepRegistry: Sendable {
    /// A registered kind with its parameter type erased: it decodes the row's JSON itself.
    struct Entry: Sendable {
        let rerunRule: RerunRule
        let attemptsOnFailure: Int
        let retryDelay: Duration
        /// Decodes the parameters (throwing `UnrunnableStep` when they no longer decode) and
        /// returns the audit action and the work.
        let prepare: @Sendable (String) throws -> (action: String, work: @Sendable (StepContext) async throws -> Void)
    }

    private(set) var entries: [String: Entry] = [:]

    /// Every kind the application defines. A new kind's file adds its line here.
    static var standard: StepRegistry {
        var registry = StepRegistry()
        registry.register(VMCreateStep())
        registry.register(VMDeleteStep())
        registry.register(VMPowerStep())
        registry.register(VMPasswordStep())
        registry.register(VMNetworkStep())
        registry.register(VMKeyRotationStep())
        registry.register(RetireUnusedKeysStep())
        registry.register(EnvironmentRecordDeleteStep())
        registry.register(AgentInstallStep())
        registry.register(AgentConfigureStep())
        registry.register(ConfigStageStep())
        registry.register(ConfigApplyStep())
        return registry
    }

    /// Adds a kind; a second kind with the same name is a programming error caught at start.
    mutating func register<Kind: StepKind>(_ kind: Kind) {
        precondition(entries[Kind.name] == nil, "step kind \(Kind.name) is registered twice")
        entries[Kind.name] = Entry(
            rerunRule: Kind.rerunRule, attemptsOnFailure: max(1, Kind.attemptsOnFailure), retryDelay: Kind.retryDelay
        ) { json in
            let parameters: Kind.Parameters
            do {
                parameters = try JSONDecoder().decode(Kind.Parameters.self, from: Data(json.utf8))
            } catch {
                throw UnrunnableStep(reason: "its parameters no longer decode as \(Kind.name): \(Self.describe(error))")
            }
            return (kind.auditAction(parameters), { context in try await kind.execute(parameters, context: context) })
        }
    }

    /// The kind named in a row, or `UnrunnableStep`.
    func entry(_ name: String?) throws -> Entry {
        guard let name, !name.isEmpty else { throw UnrunnableStep(reason: "the step has no kind (it predates jobs as data)") }
        guard let entry = entries[name] else { throw UnrunnableStep(reason: "no step kind '\(name)' is registered") }
        return entry
    }

    /// Refuses plans of kinds nobody could run, before anything is stored.
    func validate(_ plans: [StepPlan]) throws {
        if let unknown = plans.first(where: { entries[$0.kind] == nil }) {
            throw FlotillaError.validation("no step kind '\(unknown.kind)' is registered")
        }
    }

    static func encode<Parameters: Encodable>(_ parameters: Parameters) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(parameters), as: UTF8.self)
    }

    /// A decoding error in a sentence: which field, and what was wrong (never the values).
    private static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "not JSON" }
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "" : " at '\(path)'"
        }
        switch error {
        case .keyNotFound(let key, let context): return "'\(key.stringValue)' is missing\(path(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "wrong type\(path(context))"
        case .dataCorrupted(let context): return "malformed\(path(context))"
        @unknown default: return "malformed"
        }
    }
}
