import ArgumentParser
import Foundation

/// `flotctl jobs …`: the job history, one job's steps, following and cancelling.
struct JobCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs", abstract: "List, show, watch and cancel jobs.",
        subcommands: [List.self, Show.self, Watch.self, Cancel.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Job history, newest first.")
        @Option(help: "Only jobs in this state (queued, running, succeeded, failed, …); repeatable.") var status: [String] = []
        @Option(help: "Only jobs of this kind, e.g. vm.create; repeatable.") var kind: [String] = []
        @OptionGroup var output: OutputOptions
        @OptionGroup var paging: PageOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let query = status.map { ("status", $0) } + kind.map { ("kind", $0) } + paging.query
                let fetched = try await client.get(Shapes.Page<Shapes.Job>.self, "/jobs", query: query)
                if output.json { return Output.json(fetched.json) }
                Terminal.printTable(
                    ["ID", "CREATED", "STATUS", "OPERATOR", "TITLE"],
                    fetched.value.items.map { [$0.id, Output.time($0.createdAt), $0.status, $0.operator ?? "-", $0.title] })
                paging.footer(fetched.value, noun: "jobs")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A job with its steps.")
        @Argument(help: "Job ID.") var job: JobID
        @Flag(help: "Print every step's log too.") var logs = false
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let fetched = try await client.get(Shapes.Job.self, "/jobs/\(job.text)")
                if output.json { return Output.json(fetched.json) }
                let shown = fetched.value
                print("\(shown.title)  (\(shown.id))")
                print("status: \(shown.status)\(shown.summary.map { $0.isEmpty ? "" : " — \($0)" } ?? "")")
                print("")
                let steps = shown.steps ?? []
                Terminal.printTable(["#", "STEP", "STATUS"], steps.map { [String($0.position ?? 0), $0.vmName ?? $0.title, $0.status] })
                guard logs else { return }
                for step in steps where !(step.log ?? "").isEmpty {
                    print("\n--- \(step.vmName ?? step.title) (\(step.status)):")
                    print(step.log ?? "", terminator: "")
                }
            }
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow a job to its end with live progress; the exit code says how it ended.")
        @Argument(help: "Job ID.") var job: JobID
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                try await JobFollower(client: client, json: output.json).follow(job.text)
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a job: steps not yet started are skipped.")
        @Argument(help: "Job ID.") var job: JobID
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let fetched = try await client.post(Shapes.Job.self, "/jobs/\(job.text)/cancel")
                if output.json { return Output.json(fetched.json) }
                print("Job \(fetched.value.id): \(fetched.value.status)")
            }
        }
    }
}

/// A job's ID (a UUID), checked before it becomes part of a URL.
struct JobID: ExpressibleByArgument {
    let text: String

    init?(argument: String) {
        guard UUID(uuidString: argument) != nil else { return nil }
        text = argument
    }
}
