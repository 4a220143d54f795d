import ArgumentParser
import Foundation

/// `flotctl upgrades …`: the applications of the roles, rollouts of a revision to an
/// environment or some of its VMs, fast-track rollbacks, and the upgrade hooks (issue 12).
struct UpgradeCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrades", abstract: "Applications, rollouts, rollbacks and upgrade hooks.",
        subcommands: [Applications.self, Show.self, Start.self, Rollback.self, Hooks.self])

    struct Applications: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The roles' applications (credentials are never shown).")
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let fetched = try await client.get([Shapes.Application].self, "/applications")
                if output.json { return Output.json(fetched.json) }
                Terminal.printTable(
                    ["ROLE", "REPOSITORY", "BRANCH", "DEPLOY TO", "HEALTH"],
                    fetched.value.map {
                        [$0.roleName, "\($0.repositoryKind) \($0.repositoryURL)", $0.branch ?? "-", $0.deployDirectory, $0.healthText]
                    })
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One role's application, with its VMs' revisions.")
        @Argument(help: "Role name.") var role: String
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let application = try await client.application(role: role)
                let vms = try await client.allPages(Shapes.UpgradeVM.self, "/upgrades/vms", query: [("vmRole", application.roleName)])
                if output.json { return Output.json(try JSONEncoder().encode(Shapes.ApplicationWithVMs(application, vms))) }
                print("\(application.roleName): \(application.repositoryKind) \(application.repositoryURL)")
                if let branch = application.branch { print("branch: \(branch)") }
                print("deploy to: \(application.deployDirectory) (\(application.releasesKept) releases kept)")
                if let build = application.buildCommand { print("build: \(build)") }
                print("restart: \(application.restartCommand)")
                print("health: \(application.healthText) within \(application.healthTimeoutSeconds) s")
                print("")
                Terminal.printTable(
                    ["VM", "IP", "ENVIRONMENT", "CURRENT", "PREVIOUS", "TARGET", "DRIFT"],
                    vms.map {
                        [
                            $0.name, $0.ip, $0.environment, Shapes.UpgradeVM.short($0.currentRevision),
                            Shapes.UpgradeVM.short($0.previousRevision), Shapes.UpgradeVM.short($0.targetRevision), $0.drift ? "yes" : "",
                        ]
                    })
            }
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "start",
            abstract: "Roll a revision out: stage on every VM, then the canary and batches behind the health gate.")
        @Argument(help: "Environment name or ID.") var environment: String
        @Argument(help: "Git commit id, tag or branch; SVN revision number.") var revision: String
        @Option(help: "The application's role (needed when more than one role has an application).") var role: String?
        @Option(name: .customLong("vm"), help: "Only this VM (host name or ID); repeatable.") var vms: [String] = []
        @Option(help: "Canary: VMs (1) or a percentage (10%).") var canary: String?
        @Option(help: "Batch size: VMs (5) or a percentage (25%).") var batchSize: String?
        @Option(help: "Seconds to pause between batches.") var pause: Int?
        @Flag(help: "Roll out a revision marked bad on purpose (clears the mark).") var allowBadRevision = false
        @OptionGroup var job: JobOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let application = try await client.application(role: role)
                let environmentID = try await client.environmentID(environment)
                var vmIDs: [String] = []
                for vm in vms { vmIDs.append(try await client.vmID(vm)) }
                let body = StartBody(
                    applicationID: application.id, environmentID: environmentID, revision: revision, vmIDs: vmIDs.isEmpty ? nil : vmIDs,
                    canary: canary, batchSize: batchSize, pauseSeconds: pause, allowBadRevision: allowBadRevision ? true : nil)
                let answer = try await client.post(Shapes.UpgradeStarted.self, "/upgrades", json: body)
                let started = answer.value
                if !job.json {
                    print(
                        "\(started.requestedRevision) is \(started.revision); \(started.vmCount) VM\(started.vmCount == 1 ? "" : "s"), "
                            + "\(started.fetchedBytes) bytes fetched from the repository")
                }
                try await job.started(started.jobID, answer: answer, "Upgrade of \(application.roleName)", client: client)
            }
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fast track: VMs back to their previous (or a kept) release without gates; the revision left is marked bad.")
        @Argument(help: "Environment name or ID (every VM of the role there, unless --vm is given).") var environment: String
        @Option(help: "The application's role (needed when more than one role has an application).") var role: String?
        @Option(name: .customLong("vm"), help: "Only this VM (host name or ID); repeatable.") var vms: [String] = []
        @Option(help: "Back to the newest kept release of this revision instead of the previous one.") var revision: String?
        @OptionGroup var job: JobOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let application = try await client.application(role: role)
                let environmentID = try await client.environmentID(environment)
                var vmIDs: [String] = []
                for vm in vms { vmIDs.append(try await client.vmID(vm)) }
                let body = RollbackBody(
                    applicationID: application.id, vmIDs: vmIDs.isEmpty ? nil : vmIDs, environmentID: vmIDs.isEmpty ? environmentID : nil,
                    revision: revision)
                let answer = try await client.post(Shapes.JobReference.self, "/upgrades/rollback", json: body)
                try await job.started(answer.value.jobID, answer: answer, "Rollback of \(application.roleName)", client: client)
            }
        }
    }

    struct Hooks: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Upgrade hooks: where repositories' commits come in.", subcommands: [List.self, Add.self, Delete.self],
            defaultSubcommand: List.self)

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "The hooks (their secrets are never shown again).")
            @OptionGroup var output: OutputOptions

            func run() async throws {
                try await APIClient.withStoredLogin { client in
                    let fetched = try await client.get([Shapes.UpgradeHook].self, "/upgrade-hooks")
                    if output.json { return Output.json(fetched.json) }
                    Terminal.printTable(
                        ["ID", "FORMAT", "REPOSITORY", "LAST DELIVERY", "RESULT"],
                        fetched.value.map { [$0.id, $0.format, $0.repositoryURL, Output.time($0.lastDeliveryAt), $0.lastResult ?? "-"] })
                }
            }
        }

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Add a hook; its token or secret is printed this once.")
            @Argument(help: "Sender: svn, github, gitlab, gitea or generic.") var format: String
            @Argument(help: "The repository's URL as applications name it.") var repository: String
            @OptionGroup var output: OutputOptions

            func run() async throws {
                try await APIClient.withStoredLogin { client in
                    let fetched = try await client.post(
                        Shapes.UpgradeHook.self, "/upgrade-hooks", json: HookBody(format: format, repositoryURL: repository))
                    if output.json { return Output.json(fetched.json) }
                    let hook = fetched.value
                    print("hook \(hook.id): \(hook.format) for \(hook.repositoryURL)")
                    print("endpoint: \(hook.endpoint)")
                    print("secret (shown only now): \(hook.secret ?? "-")")
                    if let line = hook.postCommitLine { print("hooks/post-commit line:\n\(line)") }
                }
            }
        }

        struct Delete: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Delete a hook: its sender is refused from now on.")
            @Argument(help: "Hook ID (as `flotctl upgrades hooks` lists it).") var hook: String

            func validate() throws {
                guard UUID(uuidString: hook) != nil else {
                    throw ValidationError("a hook ID is a UUID, as `flotctl upgrades hooks` lists it")
                }
            }

            func run() async throws {
                try await APIClient.withStoredLogin { client in
                    _ = try await client.send(.DELETE, "/upgrade-hooks/\(hook)")
                    print("Deleted upgrade hook \(hook)")
                }
            }
        }
    }

    struct StartBody: Encodable, Sendable {
        var applicationID: String
        var environmentID: String
        var revision: String
        var vmIDs: [String]?
        var canary: String?
        var batchSize: String?
        var pauseSeconds: Int?
        var allowBadRevision: Bool?
    }

    struct RollbackBody: Encodable, Sendable {
        var applicationID: String
        var vmIDs: [String]?
        var environmentID: String?
        var revision: String?
    }

    struct HookBody: Encodable, Sendable {
        var format: String
        var repositoryURL: String
    }
}

extension APIClient {
    /// The application of `role`, or the only one when no role is named.
    func application(role: String?) async throws -> Shapes.Application {
        let applications = try await get([Shapes.Application].self, "/applications").value
        if let role {
            guard let match = applications.first(where: { $0.roleName == role || $0.roleID == role }) else {
                throw ClientFailure(.notFound, "role '\(role)' has no application")
            }
            return match
        }
        guard applications.count == 1, let only = applications.first else {
            throw ClientFailure(
                .badUsage,
                applications.isEmpty
                    ? "no role has an application" : "name the role with --role (\(applications.map(\.roleName).joined(separator: ", ")))")
        }
        return only
    }
}

extension Shapes {
    struct Application: Codable, Sendable {
        var id: String
        var roleID: String
        var roleName: String
        var repositoryKind: String
        var repositoryURL: String
        var branch: String?
        var deployDirectory: String
        var buildCommand: String?
        var restartCommand: String
        var healthKind: String
        var healthTarget: String
        var healthTimeoutSeconds: Int
        var releasesKept: Int

        var healthText: String { healthKind == "services" ? "watched services" : "\(healthKind) \(healthTarget)" }
    }

    struct UpgradeVM: Codable, Sendable {
        var vmID: String
        var name: String
        var ip: String
        var environment: String
        var currentRevision: String?
        var previousRevision: String?
        var targetRevision: String?
        var drift: Bool

        /// A Git commit id as the page shows it (12 characters); SVN numbers as they are.
        static func short(_ revision: String?) -> String {
            revision.map { String($0.prefix(12)) } ?? "-"
        }
    }

    /// `upgrades show --json`: the application and its VMs in one document.
    struct ApplicationWithVMs: Encodable {
        var application: Application
        var vms: [UpgradeVM]

        init(_ application: Application, _ vms: [UpgradeVM]) {
            self.application = application
            self.vms = vms
        }
    }

    struct UpgradeStarted: Decodable, Sendable {
        var rolloutID: String
        var jobID: String
        var revision: String
        var requestedRevision: String
        var vmCount: Int
        var fetchedBytes: Int
    }

    struct UpgradeHook: Decodable, Sendable {
        var id: String
        var format: String
        var repositoryURL: String
        var endpoint: String
        var postCommitLine: String?
        var lastDeliveryAt: String?
        var lastResult: String?
        var secret: String?
    }
}
