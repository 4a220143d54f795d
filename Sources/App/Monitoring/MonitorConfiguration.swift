import Fluent
import Foundation
import Vapor

/// One watched service of a role (SPEC MON-2). The agent reads the same fields from its
/// configuration file; `start`, `stop` and a command probe are the only values a shell ever
/// sees (they are commands by definition), everything else is checked to be a plain name,
/// path or address so it cannot be mistaken for anything else on the guest.
struct MonitoredService: Content, Equatable, Sendable {
    /// How the agent finds the service's process: exactly one is set.
    var process: String?
    var pidfile: String?
    var unit: String?
    var name: String
    /// A shell command (`/bin/sh -c`); required unless the service is a systemd unit.
    var start: String?
    var stop: String?
    var probe: Probe?
    var attempts: Int
    var graceSeconds: Int
    /// Platform user IDs told about this service's events (USR-7: users with an e-mail address).
    var owners: [UUID]

    /// A liveness probe: exactly one of TCP connect, HTTP status, command exit code.
    struct Probe: Content, Equatable, Sendable {
        var tcp: String?
        var http: String?
        var status: Int?
        var command: String?
        var timeoutSeconds: Double?
    }

    static let maximumServices = 50

    /// Checks every field; the message names the service and the field.
    func validate() throws {
        func fail(_ message: String) -> FlotillaError { .validation("service '\(name.prefix(64))': \(message)") }
        guard Self.isPlainName(name, extra: "._-", limit: 64) else {
            throw FlotillaError.validation("a service name has 1 to 64 letters, digits, dots, hyphens and underscores")
        }
        guard [process, pidfile, unit].compactMap({ $0 }).count == 1 else {
            throw fail("found by exactly one of process name, pidfile or systemd unit")
        }
        if let process, !Self.isPlainName(process, extra: "._-:+", limit: 64) {
            throw fail("the process name has letters, digits and . _ - : + only")
        }
        if let pidfile, !(pidfile.hasPrefix("/") && !pidfile.contains("..") && Self.isPlainName(pidfile, extra: "/._-", limit: 255)) {
            throw fail("the pidfile is an absolute path of letters, digits and / . _ -")
        }
        if let unit, !Self.isPlainName(unit, extra: "@._-:", limit: 255) {
            throw fail("the systemd unit has letters, digits and @ . _ - : only")
        }
        if start == nil && unit == nil { throw fail("a start command is required unless the service is a systemd unit") }
        for (field, command) in [("start", start), ("stop", stop), ("probe command", probe?.command)] {
            if let command { try Self.checkCommand(command, field: field, fail: fail) }
        }
        if let probe {
            guard [probe.tcp, probe.http, probe.command].compactMap({ $0 }).count == 1 else {
                throw fail("a probe is exactly one of tcp, http, command")
            }
            if let tcp = probe.tcp, !Self.isHostPort(tcp) { throw fail("the TCP probe is host:port") }
            if let http = probe.http {
                guard http.count <= 1000, let url = URL(string: http), ["http", "https"].contains(url.scheme ?? ""),
                    let host = url.host, Self.isPlainName(host, extra: ".-:[]", limit: 255),
                    !http.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value > 0x7E })
                else { throw fail("the HTTP probe is an http(s) URL") }
            }
            if let status = probe.status, !(100...599).contains(status) { throw fail("the probe status is 100 to 599") }
            if let timeout = probe.timeoutSeconds, !(0.1...60).contains(timeout) { throw fail("the probe timeout is 0.1 to 60 s") }
        }
        guard (1...100).contains(attempts) else { throw fail("attempts are 1 to 100") }
        guard (0...3600).contains(graceSeconds) else { throw fail("the grace period is 0 to 3600 s") }
    }

    private static func isPlainName(_ text: String, extra: String, limit: Int) -> Bool {
        !text.isEmpty && text.count <= limit && !text.hasPrefix("-")
            && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || extra.contains($0)) }
    }

    private static func isHostPort(_ text: String) -> Bool {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            return false
        }
        return isPlainName(String(text[..<colon]), extra: ".-:[]", limit: 255)
    }

    private static func checkCommand(_ command: String, field: String, fail: (String) -> FlotillaError) throws {
        guard !command.trimmingCharacters(in: .whitespaces).isEmpty, command.count <= 1000 else {
            throw fail("the \(field) has 1 to 1000 characters")
        }
        guard !command.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw fail("the \(field) is one line without control characters")
        }
    }

    /// The entry of the agent's configuration file (its field names).
    var agentEntry: [String: AgentConfigValue] {
        var entry: [String: AgentConfigValue] = [
            "name": .text(name), "attempts": .number(Double(attempts)), "grace_seconds": .number(Double(graceSeconds)),
        ]
        if let process { entry["process"] = .text(process) }
        if let pidfile { entry["pidfile"] = .text(pidfile) }
        if let unit { entry["unit"] = .text(unit) }
        if let start { entry["start"] = .text(start) }
        if let stop { entry["stop"] = .text(stop) }
        if let probe {
            var fields: [String: AgentConfigValue] = [:]
            if let tcp = probe.tcp { fields["tcp"] = .text(tcp) }
            if let http = probe.http { fields["http"] = .text(http) }
            if let status = probe.status { fields["status"] = .number(Double(status)) }
            if let command = probe.command { fields["command"] = .text(command) }
            if let timeout = probe.timeoutSeconds { fields["timeout_seconds"] = .number(timeout) }
            entry["probe"] = .object(fields)
        }
        return entry
    }
}

/// A value in the agent's JSON configuration.
enum AgentConfigValue: Encodable, Equatable, Sendable {
    case text(String)
    case number(Double)
    case object([String: AgentConfigValue])
    case list([AgentConfigValue])

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let text): try container.encode(text)
        case .number(let number):
            if number == number.rounded(), abs(number) < 1e15 { try container.encode(Int64(number)) } else { try container.encode(number) }
        case .object(let object): try container.encode(object)
        case .list(let list): try container.encode(list)
        }
    }
}

/// Reads and saves roles' watched services.
struct RoleMonitors {
    let database: any Database

    func services(of roleID: UUID) async throws -> [MonitoredService] {
        guard let record = try await RoleMonitor.query(on: database).filter(\.$roleID == roleID).first() else { return [] }
        return try JSONDecoder().decode([MonitoredService].self, from: Data(record.servicesJSON.utf8))
    }

    /// Validates the whole list (names unique, owners existing users with an e-mail address)
    /// before anything is stored.
    func validate(_ services: [MonitoredService]) async throws {
        guard services.count <= MonitoredService.maximumServices else {
            throw FlotillaError.validation("a role watches at most \(MonitoredService.maximumServices) services")
        }
        for service in services { try service.validate() }
        guard Set(services.map(\.name)).count == services.count else { throw FlotillaError.validation("service names must be unique") }
        let owners = Set(services.flatMap(\.owners))
        if !owners.isEmpty {
            let users = try await User.query(on: database).filter(\.$id ~~ Array(owners)).all()
            let reachable = Set(users.filter { !($0.email ?? "").isEmpty }.compactMap(\.id))
            guard reachable == owners else {
                throw FlotillaError.validation("every owner must be an existing user with an e-mail address")
            }
        }
    }

    func save(_ services: [MonitoredService], for roleID: UUID) async throws {
        let json = String(decoding: try JSONEncoder().encode(services), as: UTF8.self)
        let record = try await RoleMonitor.query(on: database).filter(\.$roleID == roleID).first() ?? RoleMonitor()
        record.roleID = roleID
        record.servicesJSON = json
        try await record.save(on: database)
    }

    /// The user names of a service's owners, for notifications.
    func ownerNames(_ service: MonitoredService?) async throws -> [String] {
        guard let owners = service?.owners, !owners.isEmpty else { return [] }
        return try await User.query(on: database).filter(\.$id ~~ owners).all().map(\.username).sorted()
    }
}
