import Fluent
import Vapor

/// `/api/v1/jobs` (SPEC BEY-1).
enum JobsAPI {
    static func register(_ api: any RoutesBuilder) {
        api.get("jobs", use: list).requires(.viewJobs)
        api.get("jobs", ":id", use: show).requires(.viewJobs)
        api.post("jobs", ":id", "cancel", use: cancel).requires(.cancelJob)
    }

    @Sendable static func list(request: Request) async throws -> ListResponse<API.JobBody> {
        let query = QueryParameters(request.url.query)
        let page = try await JobQueries.search(
            query, page: try PageRequest(page: query.first("page"), per: query.first("per")), on: request.db)
        return ListResponse(try page.map { try API.JobBody($0) })
    }

    @Sendable static func show(request: Request) async throws -> API.JobBody {
        let (job, steps) = try await JobQueries.find(try request.uuidParameter("job"), on: request.db)
        return try API.JobBody(job, steps: steps)
    }

    @Sendable static func cancel(request: Request) async throws -> API.JobBody {
        let jobID = try request.uuidParameter("job")
        try await request.application.flotilla.jobs.cancel(jobID, by: request.auditActor)
        let (job, steps) = try await JobQueries.find(jobID, on: request.db)
        return try API.JobBody(job, steps: steps)
    }
}

extension API {
    struct JobReference: Content {
        var jobID: UUID

        /// The answer to a request that started a job: 202 with the job's ID.
        static func accepted(_ jobID: UUID, for request: Request) async throws -> Response {
            try await JobReference(jobID: jobID).encodeResponse(status: .accepted, for: request)
        }
    }

    struct StepBody: Content {
        var position: Int
        var title: String
        var vmName: String?
        var status: String
        var attempts: Int
        var log: String
        /// The step kind that runs it (`vm.create`…).
        var kind: String?
        /// Why a person must look at it, when its status is `needs-attention`.
        var attentionReason: String?
        var startedAt: Date?
        var finishedAt: Date?
    }

    struct JobBody: Content {
        var id: UUID
        var kind: String
        var title: String
        var status: String
        var summary: String
        var `operator`: String?
        var operatorIP: String?
        var createdAt: Date?
        var startedAt: Date?
        var finishedAt: Date?
        var steps: [StepBody]?

        init(_ job: Job, steps: [JobStep]? = nil) throws {
            id = try job.requireID()
            kind = job.kind
            title = job.title
            status = job.status.rawValue
            summary = job.summary
            self.operator = job.operatorName
            operatorIP = job.operatorIP
            createdAt = job.createdAt
            startedAt = job.startedAt
            finishedAt = job.finishedAt
            self.steps = steps?.map {
                StepBody(
                    position: $0.position, title: $0.title, vmName: $0.vmName, status: $0.status.rawValue,
                    attempts: $0.attempts, log: $0.log, kind: $0.kind, attentionReason: $0.attentionReason, startedAt: $0.startedAt,
                    finishedAt: $0.finishedAt)
            }
        }
    }
}
