import ArgumentParser

/// Options of every command whose work is a job on the server.
struct JobOptions: ParsableArguments {
    @Flag(help: "Follow the job to its end with live progress; the exit code says how it ended.") var follow = false
    @Flag(help: "Print the server's JSON answer (with --follow: the finished job) instead of text.") var json = false

    /// Reports a started job: follows it, or prints its ID and how to follow it.
    func started(_ jobID: String, answer: APIClient.Fetched<some Decodable & Sendable>, _ what: String, client: APIClient) async throws {
        if follow {
            try await JobFollower(client: client, json: json).follow(jobID)
        } else if json {
            Output.json(answer.json)
        } else {
            print("\(what): job \(jobID) (follow it with `flotctl jobs watch \(jobID)`)")
        }
    }
}

/// `on`, `off` or `restart`.
enum PowerAction: String, CaseIterable, ExpressibleByArgument {
    case on, off, restart
}

/// Paging of the list commands: the server's page sizes are 10, 20, 50 and 100.
struct PageOptions: ParsableArguments {
    @Option(help: "Page to show, from 1.") var page = 1
    @Option(help: "Entries per page: 10, 20, 50 or 100.") var per = 100

    var query: [(String, String)] { [("page", String(page)), ("per", String(per))] }

    /// A line under a list when there are more pages.
    func footer<Item: Decodable & Sendable>(_ answer: Shapes.Page<Item>, noun: String) {
        let pages = max(1, (answer.total + answer.per - 1) / max(answer.per, 1))
        if pages > 1 { print("page \(answer.page) of \(pages) (\(answer.total) \(noun)); --page N for more") }
    }
}
