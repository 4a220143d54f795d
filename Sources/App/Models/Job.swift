import Fluent
import Vapor

public enum JobStatus: String, Codable, Sendable, CaseIterable {
    case queued, running, succeeded, failed, cancelled, interrupted

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
    /// What happened, one line per event, for people to read.
    @Field(key: "log") public var log: String
    @OptionalField(key: "started_at") public var startedAt: Date?
    @OptionalField(key: "finished_at") public var finishedAt: Date?

    public init() {}

    /// Adds one timestamped (UTC) line to the step's log.
    func appendLog(_ line: String) {
        log += "[\(DisplayTime(timeZone: .gmt).string(Date()))] \(line)\n"
    }
}
