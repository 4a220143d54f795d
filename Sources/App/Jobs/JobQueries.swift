import Fluent
import Vapor

/// Reading jobs, for the job pages and the API.
enum JobQueries {
    static func find(_ id: UUID, on database: any Database) async throws -> (Job, [JobStep]) {
        guard let job = try await Job.find(id, on: database) else { throw FlotillaError.notFound("no such job") }
        return (job, try await job.$steps.query(on: database).sort(\.$position).all())
    }

    /// Newest first, filtered by `status` and `kind` (repeatable).
    static func search(_ query: QueryParameters, page: PageRequest, on database: any Database) async throws -> Page<Job> {
        let statuses = try query.all("status").map { text in
            guard let status = JobStatus(rawValue: text) else {
                throw FlotillaError.validation("status must be one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return status
        }
        let kinds = query.all("kind")
        func filtered() -> QueryBuilder<Job> {
            let builder = Job.query(on: database)
            if !statuses.isEmpty { builder.filter(\.$status ~~ statuses) }
            if !kinds.isEmpty { builder.filter(\.$kind ~~ kinds) }
            return builder
        }
        let total = try await filtered().count()
        let items = try await filtered().sort(\.$createdAt, .descending).range(page.offset..<(page.offset + page.per)).all()
        return Page(items: items, total: total, request: page)
    }
}
