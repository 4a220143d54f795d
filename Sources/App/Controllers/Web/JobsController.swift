import Fluent
import Vapor

/// Job history and the live page of one job (SPEC BEY-1).
enum JobsController {
    struct JobRow: Encodable {
        var id: String
        var url: String
        var title: String
        var kind: String
        var status: String
        var summary: String
        var operatorName: String
        var created: String
    }

    struct StepRow: Encodable {
        var title: String
        var status: String
        var attempts: Int
        var log: String
        var attentionReason: String?
    }

    struct ListPage: Encodable {
        struct Option: Encodable {
            var value: String
            var selected: Bool
        }

        var chrome: PageChrome
        var jobs: [JobRow]
        var pagination: PaginationView
        var statuses: [Option]
        var kind: String
    }

    struct DetailPage: Encodable {
        var chrome: PageChrome
        var job: JobRow
        var steps: [StepRow]
        var finished: Bool
        var canCancel: Bool
        var cancelURL: String
        var apiURL: String
    }

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.jobs.pathComponents, use: list).requires(.viewJobs)
        routes.get(SiteURL.job(id: nil).pathComponents, use: show).requires(.viewJobs)
        routes.post(SiteURL.jobCancel(id: nil).pathComponents, use: cancel).requires(.cancelJob)
    }

    static func row(_ job: Job, display: DisplayTime) throws -> JobRow {
        let id = try job.requireID()
        return JobRow(
            id: id.uuidString, url: SiteURL.job(id: id).relative, title: job.title, kind: job.kind, status: job.status.rawValue,
            summary: job.summary, operatorName: job.operatorName ?? "", created: job.createdAt.map(display.string) ?? "")
    }

    @Sendable static func list(request: Request) async throws -> View {
        let query = QueryParameters(request.url.query)
        let page = try await JobQueries.search(
            query, page: try PageRequest(page: query.first("page"), per: query.first("per")), on: request.db)
        let display = DisplayTime(timeZone: request.application.flotilla.config.displayTimeZone)
        let selected = Set(query.all("status"))
        let kept = query.all("status").map { ("status", $0) } + query.all("kind").map { ("kind", $0) }
        return try await request.view.render(
            "jobs",
            ListPage(
                chrome: PageChrome(request, title: "Jobs"), jobs: try page.items.map { try row($0, display: display) },
                pagination: PaginationView(page, path: SiteURL.jobs.relative, query: kept),
                statuses: JobStatus.allCases.map { .init(value: $0.rawValue, selected: selected.contains($0.rawValue)) },
                kind: query.first("kind") ?? ""))
    }

    @Sendable static func show(request: Request) async throws -> View {
        let id = try request.uuidParameter("job")
        let (job, steps) = try await JobQueries.find(id, on: request.db)
        let display = DisplayTime(timeZone: request.application.flotilla.config.displayTimeZone)
        return try await request.view.render(
            "job",
            DetailPage(
                chrome: PageChrome(request, title: job.title), job: try row(job, display: display),
                steps: steps.map {
                    StepRow(
                        title: $0.title, status: $0.status.rawValue, attempts: $0.attempts, log: $0.log,
                        attentionReason: $0.attentionReason)
                },
                finished: job.status.isFinished, canCancel: Action.cancelJob.isAllowed(for: request.auth.get(User.self)?.role),
                cancelURL: SiteURL.jobCancel(id: id).relative, apiURL: "/api/v1/jobs/\(id.uuidString)"))
    }

    @Sendable static func cancel(request: Request) async throws -> Response {
        let id = try request.uuidParameter("job")
        try await request.application.flotilla.jobs.cancel(id, by: request.auditActor)
        return request.redirect(to: SiteURL.job(id: id).relative)
    }
}
