import Fluent
import Vapor

/// `GET /api/v1/vms/:id/metrics?range=2h`: a VM's CPU and memory series for its charts (SPEC DASH-5, BEY-7).
enum MetricsAPI {
    static func register(_ api: any RoutesBuilder) {
        api.get("vms", ":id", "metrics", use: series).requires(.viewVMMetrics)
    }

    @Sendable static func series(request: Request) async throws -> API.MetricSeriesBody {
        let range = try MetricRange(parsing: request.query[String.self, at: "range"])
        let vmID = try request.uuidParameter("VM")
        guard try await VM.query(on: request.db).filter(\.$id == vmID).count() > 0 else {
            throw FlotillaError.notFound("no such VM")
        }
        return API.MetricSeriesBody(vmID: vmID, try await MetricsStore(database: request.db).series(of: vmID, range: range))
    }
}

extension API {
    /// One value per bucket from `start`, every `stepSeconds`; null where nothing was collected.
    struct MetricSeriesBody: Content {
        var vmID: UUID
        var range: String
        var stepSeconds: Int
        var start: Date
        var points: Int
        var unit = "percent"
        var cpu: MetricBandBody
        var memory: MetricBandBody

        init(vmID: UUID, _ series: MetricSeries) {
            self.vmID = vmID
            range = series.range.rawValue
            stepSeconds = series.resolution.rawValue
            start = Date(timeIntervalSince1970: TimeInterval(series.start))
            points = series.count
            cpu = MetricBandBody(series.cpu)
            memory = MetricBandBody(series.memory)
        }
    }

    /// Averages per bucket; minimum and maximum only for rollups (5-minute and hourly buckets).
    struct MetricBandBody: Content {
        var avg: [Double?]
        var min: [Double?]?
        var max: [Double?]?

        init(_ band: MetricSeries.Band) {
            avg = band.avg
            min = band.min
            max = band.max
        }
    }
}
