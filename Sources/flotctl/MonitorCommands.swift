import ArgumentParser
import Foundation

/// `flotctl monitor …`: the monitor agents (SPEC MON-2, VM-13, BEY-6): a role's watched
/// services, a VM's services as its agent reports them, service actions and a test mail.
struct MonitorCommands: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor", abstract: "Watched services of roles and VMs, service actions, test notifications.",
        subcommands: [RoleShow.self, RoleSet.self, Services.self, Start.self, Stop.self, Restart.self, TestMail.self])

    struct RoleShow: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "role-show", abstract: "Show a role's watched services.")
        @Argument(help: "Role name or ID.") var role: String
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let found = try await client.role(role)
                if output.json { return Output.json(try JSONEncoder.sorted.encode(found.monitor)) }
                let users = try await client.allPages(Shapes.User.self, "/users")
                Terminal.printTable(
                    ["SERVICE", "FOUND BY", "PROBE", "ATTEMPTS", "GRACE", "OWNERS"],
                    found.monitor.map { service in
                        [
                            service.name, service.foundBy, service.probe?.summary ?? "-", String(service.attempts),
                            "\(service.graceSeconds) s",
                            service.owners.map { id in users.first { $0.id == id }?.username ?? id }.joined(separator: ",").ifEmpty("-"),
                        ]
                    })
            }
        }
    }

    struct RoleSet: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "role-set",
            abstract: "Replace a role's watched services and push them to the role's agents.",
            discussion: """
                The file is a JSON list of services as `role-show --json` prints them (name; one of \
                process, pidfile, unit; start, stop, probe, attempts, graceSeconds, owners). Owners \
                may be user names or IDs. An empty list [] stops watching.
                """)
        @Argument(help: "Role name or ID.") var role: String
        @Option(help: "JSON file with the services; - reads standard input.") var file: String
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let data: Data
            do {
                data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
            } catch {
                throw ClientFailure(.badUsage, "cannot read \(file): \(error.localizedDescription)")
            }
            var services: [MonitorShapes.Service]
            do {
                services = try JSONDecoder().decode([MonitorShapes.Service].self, from: data)
            } catch {
                throw ClientFailure(.badUsage, "\(file) is not a JSON list of services: \(error)")
            }
            try await APIClient.withStoredLogin { client in
                for index in services.indices {
                    var owners: [String] = []
                    for owner in services[index].owners { owners.append(try await client.userID(owner)) }
                    services[index].owners = owners
                }
                let found = try await client.role(role)
                let changed = try await client.patch(
                    MonitorShapes.Role.self, "/roles/\(found.id)", json: MonitorShapes.RoleInput(found, monitor: services))
                if output.json { return Output.json(changed.json) }
                let names = changed.value.monitor.map(\.name)
                print("Role \(changed.value.name) watches \(names.isEmpty ? "no services" : names.joined(separator: ", "))")
                print("The role's VMs with an agent get the change in a job (see `flotctl jobs list`).")
            }
        }
    }

    struct Services: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A VM's watched services as its agent last reported them.")
        @Argument(help: "VM host name or ID.") var vm: String
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                let fetched = try await client.get(MonitorShapes.VMServices.self, "/vms/\(try await client.vmID(vm))/services")
                if output.json { return Output.json(fetched.json) }
                MonitorShapes.print(fetched.value, vm: vm)
            }
        }
    }

    /// Start, stop or restart through the VM's agent (system administrators).
    struct ServiceAction: ParsableArguments {
        @Argument(help: "VM host name or ID.") var vm: String
        @Argument(help: "Watched service name.") var service: String
        @OptionGroup var output: OutputOptions

        func perform(_ action: String) async throws {
            guard let escaped = service.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "._-")))
            else {
                throw ClientFailure(.badUsage, "'\(service)' is not a service name")
            }
            try await APIClient.withStoredLogin { client in
                let fetched = try await client.post(
                    MonitorShapes.VMServices.self, "/vms/\(try await client.vmID(vm))/services/\(escaped)/\(action)")
                if output.json { return Output.json(fetched.json) }
                print("\(action) \(service) on \(vm): done")
                MonitorShapes.print(fetched.value, vm: vm)
            }
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a watched service (releases a stop).")
        @OptionGroup var action: ServiceAction
        func run() async throws { try await action.perform("start") }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a watched service; the agent leaves it stopped until started.")
        @OptionGroup var action: ServiceAction
        func run() async throws { try await action.perform("stop") }
    }

    struct Restart: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Restart a watched service.")
        @OptionGroup var action: ServiceAction
        func run() async throws { try await action.perform("restart") }
    }

    struct TestMail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "test-mail", abstract: "Queue a test mail through the platform's mail server and show its delivery.")
        @Argument(help: "Recipient address.") var to: String
        @Flag(help: "Wait up to a minute for the delivery's outcome.") var wait = false
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await APIClient.withStoredLogin { client in
                var fetched = try await client.post(MonitorShapes.Delivery.self, "/notifications/test-mail", json: ["to": to])
                let deadline = Date().addingTimeInterval(60)
                while wait, fetched.value.status == "queued" || fetched.value.status == "sending", Date() < deadline {
                    try await Task.sleep(for: .milliseconds(250))
                    fetched = try await client.get(MonitorShapes.Delivery.self, "/notifications/deliveries/\(fetched.value.id)")
                }
                if output.json { return Output.json(fetched.json) }
                let delivery = fetched.value
                print("Test mail to \(to): \(delivery.status)\(delivery.lastError.map { " (\($0))" } ?? "") — delivery \(delivery.id)")
                if wait, delivery.status != "delivered" {
                    throw ClientFailure(.failed, "the test mail was not delivered: \(delivery.lastError ?? delivery.status)")
                }
            }
        }
    }
}

/// The monitor API's shapes as the client reads and sends them.
enum MonitorShapes {
    struct Probe: Codable, Sendable {
        var tcp: String?
        var http: String?
        var status: Int?
        var command: String?
        var timeoutSeconds: Double?

        var summary: String {
            if let tcp { return "tcp \(tcp)" }
            if let http { return "http \(http)" + (status.map { " → \($0)" } ?? "") }
            return "command"
        }
    }

    struct Service: Codable, Sendable {
        var name: String
        var process: String?
        var pidfile: String?
        var unit: String?
        var start: String?
        var stop: String?
        var probe: Probe?
        var attempts: Int
        var graceSeconds: Int
        var owners: [String]

        var foundBy: String {
            if let process { return "process \(process)" }
            if let pidfile { return "pidfile \(pidfile)" }
            return "unit \(unit ?? "-")"
        }
    }

    struct Role: Decodable, Sendable {
        var id: String
        var name: String
        var connectionID: String
        var template: String
        var cpus: Int?
        var memoryMB: Int?
        var sshUser: String?
        var services: [String]?
        var monitor: [Service]
    }

    /// A role's settings as the role API takes them, with new watched services.
    struct RoleInput: Encodable, Sendable {
        var name: String
        var connectionID: String
        var template: String
        var cpus: Int?
        var memoryMB: Int?
        var sshUser: String?
        var services: String?
        var monitor: [Service]

        init(_ role: Role, monitor: [Service]) {
            name = role.name
            connectionID = role.connectionID
            template = role.template
            cpus = role.cpus
            memoryMB = role.memoryMB
            sshUser = role.sshUser
            services = role.services?.joined(separator: ",")
            self.monitor = monitor
        }
    }

    struct VMServices: Decodable, Sendable {
        struct Agent: Decodable, Sendable {
            var state: String
            var lastHeartbeatAt: String?
            var silentSince: String?
            var version: String?
            var queuedEvents: Int?
        }
        struct Service: Decodable, Sendable {
            var name: String
            var state: String
            var restarts: Int
            var failures: Int
            var attempts: Int
            var since: String?
        }
        struct Event: Decodable, Sendable {
            var kind: String
            var service: String
            var attempts: Int
            var occurredAt: String?
        }
        var agent: Agent
        var services: [Service]
        var events: [Event]
    }

    struct Delivery: Decodable, Sendable {
        var id: String
        var status: String
        var lastError: String?
    }

    static func print(_ answer: VMServices, vm: String) {
        let agent = answer.agent
        Swift.print("Agent on \(vm): \(agent.state)" + (agent.lastHeartbeatAt.map { ", last heard \(Output.time($0))" } ?? ""))
        Terminal.printTable(
            ["SERVICE", "STATE", "RESTARTS", "FAILURES", "SINCE (UTC)"],
            answer.services.map { [$0.name, $0.state, String($0.restarts), String($0.failures), Output.time($0.since)] })
    }
}

extension APIClient {
    /// A role from its name or ID.
    fileprivate func role(_ nameOrID: String) async throws -> MonitorShapes.Role {
        let roles = try await get([MonitorShapes.Role].self, "/roles").value
        guard let match = roles.first(where: { $0.id == nameOrID || $0.name == nameOrID }) else {
            throw ClientFailure(.notFound, "no role named '\(nameOrID)'")
        }
        return match
    }
}

extension JSONEncoder {
    /// Pretty, with sorted keys: what `role-show --json` prints and `role-set` reads back.
    fileprivate static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

extension String {
    fileprivate func ifEmpty(_ replacement: String) -> String { isEmpty ? replacement : self }
}
