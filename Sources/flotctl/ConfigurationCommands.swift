import ArgumentParser
import Foundation

/// `flotctl config …`: the service configuration wizard (issue 13) on the command line —
/// profiles, the dependency check, the preview and Configure as a job.
struct ConfigurationCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Service configuration: profiles, check, preview, configure.",
        discussion: """
            `check PROFILE ENVIRONMENT` starts a run (one VM per dependency role: --dependency ROLE=VM, or the \
            environment's only VM of that role) and checks it from the platform and the target VMs; it prints the \
            run's ID. `preview RUN` and `configure RUN` work on that run, for --target VMs or every VM of the \
            profile's target roles in the environment.
            """,
        subcommands: [Profiles.self, Check.self, Preview.self, Configure.self])

    struct Profiles: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Service profiles.", subcommands: [List.self, Show.self], defaultSubcommand: List.self)

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "The profiles, their versions and roles.")
            @OptionGroup var output: OutputOptions

            func run() async throws {
                try await APIClient.withStoredLogin { client in
                    let fetched = try await client.get([Shapes.ServiceProfile].self, "/service-profiles")
                    if output.json { return Output.json(fetched.json) }
                    Terminal.printTable(
                        ["NAME", "VERSION", "DEPENDENCIES", "TARGETS", "DESCRIPTION"],
                        fetched.value.map {
                            [
                                $0.name, String($0.version), $0.dependencyRoles.joined(separator: ","),
                                $0.targetRoles.joined(separator: ","),
                                $0.description.map { String($0.prefix(60)) } ?? "",
                            ]
                        })
                }
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "A profile's current document (secret values are never shown).")
            @Argument(help: "Profile name or ID.") var profile: String
            @OptionGroup var output: OutputOptions

            func run() async throws {
                try await APIClient.withStoredLogin { client in
                    let id = try await client.serviceProfile(profile).id
                    let fetched = try await client.get(Shapes.ServiceProfile.self, "/service-profiles/\(id)")
                    if output.json { return Output.json(fetched.json) }
                    let shown = fetched.value
                    print("# \(shown.name) version \(shown.version); secrets set: \(shown.secretsSet.joined(separator: ", "))")
                    print(shown.document, terminator: shown.document.hasSuffix("\n") ? "" : "\n")
                }
            }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a run and check its dependencies from the platform and the target VMs (exit 1 when a check failed).")
        @Argument(help: "Profile name or ID.") var profile: String
        @Argument(help: "Environment name or ID.") var environment: String
        @Option(name: .customLong("dependency"), help: "ROLE=VM (host name or ID) for a dependency role; repeatable.")
        var dependencies: [String] = []
        @Option(name: .customLong("target"), help: "Check from this target VM (host name or ID); repeatable. Default: all of them.")
        var targets: [String] = []
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let profileID = try await client.serviceProfile(profile).id
                let environmentID = try await client.environmentID(environment)
                let options = try await client.get(
                    Shapes.ConfigurationOptions.self, "/service-profiles/\(profileID)/options", query: [("environment", environmentID)]
                ).value
                var chosen: [String: String] = [:]
                for pair in dependencies {
                    let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    guard parts.count == 2 else { throw ClientFailure(.badUsage, "--dependency \(pair): give ROLE=VM") }
                    chosen[parts[0]] = try await client.vmID(parts[1])
                }
                for option in options.dependencies where chosen[option.role] == nil {
                    guard option.vms.count == 1, let only = option.vms.first else {
                        throw ClientFailure(
                            .badUsage,
                            "\(options.environment) has \(option.vms.count) VMs of role \(option.role): choose one with --dependency \(option.role)=VM"
                        )
                    }
                    chosen[option.role] = only.id
                }
                let run = try await client.post(
                    Shapes.ConfigurationRun.self, "/configuration-runs",
                    json: NewRun(profileID: profileID, environmentID: environmentID, dependencies: chosen)
                ).value
                let report = try await client.post(
                    Shapes.CheckReport.self, "/configuration-runs/\(run.id)/check",
                    json: Targets(targets: try await client.targetIDs(targets, options: options)))
                if output.json {
                    Output.json(report.json)
                } else {
                    Terminal.printTable(
                        ["ROLE", "VM", "CHECK", "FROM", "RESULT", "MS", "DETAIL"],
                        report.value.results.map {
                            [
                                $0.role, "\($0.vm) \($0.address):\($0.port)", "\($0.service) (\($0.methodDescription))", $0.origin,
                                $0.passed ? "passed" : "FAILED: \($0.layer ?? "?")", String($0.milliseconds), String($0.message.prefix(60)),
                            ]
                        })
                    print(
                        "run \(run.id): \(report.value.passed ? "every check passed" : "checks failed") in \(report.value.elapsedMilliseconds) ms"
                    )
                }
                guard report.value.passed else {
                    throw ClientFailure(.failed, report.value.failures.joined(separator: "\n"))
                }
                if !output.json { print("next: flotctl config preview \(run.id), then flotctl config configure \(run.id) --follow") }
            }
        }
    }

    struct Preview: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Per target VM and file: the unified diff against the file on the guest now (secrets masked).")
        @Argument(help: "Run ID (printed by `config check`).") var run: JobID
        @Option(name: .customLong("target"), help: "Target VM (host name or ID); repeatable. Default: all of them.")
        var targets: [String] = []
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let targetIDs = try await client.targetIDs(targets, run: run.text)
                let fetched = try await client.post(
                    [Shapes.VMPreview].self, "/configuration-runs/\(run.text)/preview", json: Targets(targets: targetIDs))
                if output.json { return Output.json(fetched.json) }
                for preview in fetched.value {
                    let changed = preview.files.filter(\.changed)
                    print(
                        "\(preview.vm.hostName) (\(preview.vm.role)): \(changed.count) of \(preview.files.count) files change"
                            + (preview.restart.isEmpty ? "" : "; restarts \(preview.restart.joined(separator: ", "))"))
                    if let problem = preview.problem { print("  could not read the guest's files: \(problem)") }
                    for file in changed { print(file.diff, terminator: file.diff.hasSuffix("\n") ? "" : "\n") }
                }
            }
        }
    }

    struct Configure: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stage, validate, replace, restart and health-gate the target VMs' files as a job (needs a passed check).")
        @Argument(help: "Run ID (printed by `config check`).") var run: JobID
        @Option(name: .customLong("target"), help: "Target VM (host name or ID); repeatable. Default: all of them.")
        var targets: [String] = []
        @OptionGroup var job: JobOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let targetIDs = try await client.targetIDs(targets, run: run.text)
                let answer = try await client.post(
                    Shapes.JobReference.self, "/configuration-runs/\(run.text)/configure", json: Targets(targets: targetIDs))
                try await job.started(answer.value.jobID, answer: answer, "Configuration", client: client)
            }
        }
    }

    struct NewRun: Encodable, Sendable {
        var profileID: String
        var environmentID: String
        var dependencies: [String: String]
    }

    struct Targets: Encodable, Sendable {
        var targets: [String]
    }
}

extension APIClient {
    /// A service profile by name or ID.
    func serviceProfile(_ nameOrID: String) async throws -> Shapes.ServiceProfile {
        let profiles = try await get([Shapes.ServiceProfile].self, "/service-profiles").value
        guard let match = profiles.first(where: { $0.id.lowercased() == nameOrID.lowercased() || $0.name == nameOrID }) else {
            throw ClientFailure(.notFound, "no service profile named '\(nameOrID)'")
        }
        return match
    }

    /// The named target VMs' IDs, or every VM of the profile's target roles in the environment.
    func targetIDs(_ names: [String], options: Shapes.ConfigurationOptions) async throws -> [String] {
        guard names.isEmpty else {
            var ids: [String] = []
            for name in names { ids.append(try await vmID(name)) }
            return ids
        }
        return options.targets.flatMap { $0.vms.map(\.id) }
    }

    /// Same, for a run: its profile and environment say which VMs are targets.
    func targetIDs(_ names: [String], run: String) async throws -> [String] {
        let body = try await get(Shapes.ConfigurationRun.self, "/configuration-runs/\(run)").value
        let options = try await get(
            Shapes.ConfigurationOptions.self, "/service-profiles/\(body.profileID)/options", query: [("environment", body.environmentID)]
        ).value
        let ids = try await targetIDs(names, options: options)
        guard !ids.isEmpty else { throw ClientFailure(.badUsage, "\(body.environment) has no VM of the profile's target roles") }
        return ids
    }
}

extension Shapes {
    struct ServiceProfile: Decodable, Sendable {
        var id: String
        var name: String
        var description: String?
        var version: Int
        var document: String
        var dependencyRoles: [String]
        var targetRoles: [String]
        var secretsSet: [String]
    }

    struct ConfigurationChoice: Decodable, Sendable {
        var id: String
        var hostName: String
        var role: String
    }

    struct ConfigurationOptions: Decodable, Sendable {
        struct Role: Decodable, Sendable {
            var role: String
            var vms: [ConfigurationChoice]
        }

        var environment: String
        var dependencies: [Role]
        var targets: [Role]
    }

    struct ConfigurationRun: Decodable, Sendable {
        var id: String
        var profileID: String
        var environmentID: String
        var environment: String
    }

    struct CheckReport: Decodable, Sendable {
        struct Result: Decodable, Sendable {
            var role: String
            var vm: String
            var address: String
            var port: Int
            var service: String
            var origin: String
            var methodDescription: String
            var passed: Bool
            var layer: String?
            var message: String
            var milliseconds: Int
        }

        var passed: Bool
        var elapsedMilliseconds: Int
        var results: [Result]
        var failures: [String]
    }

    struct VMPreview: Decodable, Sendable {
        struct File: Decodable, Sendable {
            var path: String
            var changed: Bool
            var diff: String
        }

        var vm: ConfigurationChoice
        var files: [File]
        var restart: [String]
        var problem: String?
    }
}
