import Foundation

@testable import App

/// What the test step kinds share: a label, how long to work, whether to fail.
struct TestStepParameters: Codable, Sendable {
    var label: String
    var milliseconds = 0
    var fails = false
}

/// Records each run (with "rerun" when the engine says an earlier run was cut off), works for a
/// while on its first run (cancellable; a re-run finds the work done), then succeeds or fails.
private func work(_ parameters: TestStepParameters, context: StepContext, recorder: Recorder, gauge: Gauge?) async throws {
    await recorder.add(context.isRerun ? "\(parameters.label) rerun" : parameters.label)
    await context.log("working on \(parameters.label)")
    await gauge?.enter()
    do {
        if parameters.milliseconds > 0, !context.isRerun { try await Task.sleep(for: .milliseconds(parameters.milliseconds)) }
    } catch {
        await gauge?.leave()
        throw error
    }
    await gauge?.leave()
    if parameters.fails { throw FlotillaError(.unavailable, "\(parameters.label) broke") }
}

/// Safe to run twice.
struct IdempotentTestStep: StepKind {
    typealias Parameters = TestStepParameters
    static let name = "test.idempotent"
    static let rerunRule = RerunRule.idempotent
    let recorder: Recorder
    var gauge: Gauge?

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        try await work(parameters, context: context, recorder: recorder, gauge: gauge)
    }

    func auditAction(_ parameters: Parameters) -> String { "test.\(parameters.label)" }
}

/// Run again only after looking at what the cut-off run left.
struct CheckingTestStep: StepKind {
    typealias Parameters = TestStepParameters
    static let name = "test.checking"
    static let rerunRule = RerunRule.rerunAfterCheck
    let recorder: Recorder

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        try await work(parameters, context: context, recorder: recorder, gauge: nil)
    }
}

/// Never run twice without a person.
struct AttentionTestStep: StepKind {
    typealias Parameters = TestStepParameters
    static let name = "test.attention"
    static let rerunRule = RerunRule.needsAttention("a person must check the half-done work")
    let recorder: Recorder

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        try await work(parameters, context: context, recorder: recorder, gauge: nil)
    }
}

/// Fails until its third attempt.
struct FlakyTestStep: StepKind {
    typealias Parameters = TestStepParameters
    static let name = "test.flaky"
    static let rerunRule = RerunRule.idempotent
    static let attemptsOnFailure = 3
    static let retryDelay = Duration.milliseconds(10)
    let recorder: Recorder

    func execute(_ parameters: Parameters, context: StepContext) async throws {
        await recorder.add("try")
        if await recorder.items.count < 3 { throw FlotillaError(.unavailable, "not yet") }
    }
}

extension JobEngine {
    /// Registers every test kind, recording into `recorder` (and `gauge` for the idempotent one).
    nonisolated func registerTestKinds(_ recorder: Recorder, gauge: Gauge? = nil) {
        register(IdempotentTestStep(recorder: recorder, gauge: gauge))
        register(CheckingTestStep(recorder: recorder))
        register(AttentionTestStep(recorder: recorder))
        register(FlakyTestStep(recorder: recorder))
    }
}

extension StepPlan {
    /// A test step of `kind` (`IdempotentTestStep.self`…).
    static func test<Kind: StepKind>(
        _ kind: Kind.Type, _ label: String, milliseconds: Int = 0, fails: Bool = false, phase: Int = 0,
        connectionID: UUID? = nil, vmName: String? = nil
    ) throws -> StepPlan where Kind.Parameters == TestStepParameters {
        try StepPlan(
            kind, TestStepParameters(label: label, milliseconds: milliseconds, fails: fails), title: label, vmName: vmName,
            phase: phase, connectionID: connectionID)
    }
}

actor Recorder {
    private(set) var items: [String] = []
    func add(_ item: String) { items.append(item) }
}

actor Gauge {
    private var current = 0
    private(set) var peak = 0
    func enter() {
        current += 1
        peak = max(peak, current)
    }
    func leave() { current -= 1 }
}
