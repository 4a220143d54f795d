import Fluent
import Vapor

public enum JobStatus: String, Codable, Sendable, CaseIterable {
    case queued, running, succeeded, failed, cancelled
    /// Ended by the server stopping (jobs before they were data; kept for their history).
    case interrupted
    /// A step could not be run or resumed safely: a person must look (see its reason).
    case needsAttention = "needs-attention"

    public var isFinished: Bool { ![.queued, .running].contains(self) }
}

/// One long operation (SPEC BEY-1) with its per-VM steps.
public final class Job: Model, @unchecked Sendable {
    public static let schema = "jobs"

    @ID(key: .id) public var id: UUID?
    @Field(key: "kind") public var kind: String
    @Field(key: "title") public var title: String
    @Enum(key: "status") public var status: JobStatus
    @OptionalField(key: "operator") public var operatorName: String?
    @OptionalField(key: "operator_ip") public var operatorIP: String?
    @Field(key: "summary") public var summary: String
    @Field(key: "cancel_requested") public var cancelRequested: Bool
    @Children(for: \.$job) public var steps: [JobStep]
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?
    @OptionalField(key: "started_at") public var startedAt: Date?
    @OptionalField(key: "finished_at") public var finishedAt: Date?

    public init() {}
}

public final class JobStep: Model, @unchecked Sendable {
    public static let schema = "job_steps"

    @ID(key: .id) public var id: UUID?
    @Parent(key: "job_id") public var job: Job
    @Field(key: "position") public var position: Int
    @Field(key: "title") public var title: String
    @OptionalField(key: "vm_name") public var vmName: String?
    @OptionalField(key: "vm_role") public var vmRole: String?
    @Enum(key: "status") public var status: JobStatus
    @Field(key: "attempts") public var attempts: Int
    /// The `StepKind` that runs it, and its parameters as JSON (SPEC BEY-8).
    @OptionalField(key: "kind") public var kind: String?
    @OptionalField(key: "parameters") public var parameters: String?
    @Field(key: "phase") public var phase: Int
    @OptionalField(key: "connection_id") public var connectionID: UUID?
    /// The instance running it and until when, unless it renews; a step whose lease expired is
    /// taken over by another instance according to its kind's rerun rule.
    @OptionalField(key: "lease_owner") public var leaseOwner: UUID?
    @OptionalField(key: "lease_expires_at") public var leaseExpiresAt: Date?
    /// Why a person must look at it (status `needs-attention`).
    @OptionalField(key: "attention_reason") public var attentionReason: String?
    /// What happened, one line per event, for people to read.
    @Field(key: "log") public var log: String
    @OptionalField(key: "started_at") public var startedAt: Date?
    @OptionalField(key: "finished_at") public var finishedAt: Date?

    public init() {}
}
