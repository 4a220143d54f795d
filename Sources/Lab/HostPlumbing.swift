import Foundation

/// What lab-host.sh reports about one guest namespace.
struct GuestStatus: Equatable, Sendable {
    var key: String
    var running: Bool
    /// eth0's address inside the guest as `a.b.c.d`, nil when it has none.
    var address: String?
}

/// The machine side of the lab, done by lab/lab-host.sh: the bridge, each guest's network
/// namespace, starting and killing guests, and removing it all.
struct HostPlumbing: Sendable {
    let configuration: LabConfiguration

    private var script: String { configuration.scriptsDirectory + "/lab-host.sh" }

    func guestDirectory(_ key: String) -> String { configuration.guestsDirectory + "/" + key }

    func bridgeUp() async throws {
        try await HostCommand.check(script, ["bridge-up", "\(configuration.gateway)/\(configuration.network.prefixLength)"])
    }

    /// Writes the guest's seed files (read by guest-init.sh on its first boot only).
    func prepare(_ spec: GuestSpec) throws {
        let seed = guestDirectory(spec.key) + "/seed"
        try FileManager.default.createDirectory(
            atPath: seed, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for (name, content) in spec.seedFiles {
            try Data(content.utf8).write(to: URL(fileURLWithPath: seed + "/" + name))
        }
    }

    func start(_ key: String) async throws {
        try await HostCommand.check(script, ["start", key, guestDirectory(key)])
    }

    func stop(_ key: String) async throws {
        try await HostCommand.check(script, ["stop", key])
    }

    func remove(_ key: String) async throws {
        try await HostCommand.check(script, ["remove", key, guestDirectory(key)])
    }

    func status() async throws -> [GuestStatus] {
        try await HostCommand.check(script, ["status"]).split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 3 else { return nil }
            let address = fields[2] == "-" ? nil : fields[2].split(separator: "/").first.map(String.init)
            return GuestStatus(key: String(fields[0]), running: fields[1] == "running", address: address)
        }
    }

    /// Keys of guests that have a state directory (made by this lab, possibly by an earlier run).
    func recordedGuests() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: configuration.guestsDirectory)) ?? []
        return names.filter(GuestSpec.isValidKey)
    }

    func down() async throws {
        try await HostCommand.check(script, ["down", configuration.stateDirectory])
    }
}
