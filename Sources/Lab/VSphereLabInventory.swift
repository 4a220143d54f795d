import Foundation
import VSphere

/// vcsim (or any vSphere endpoint) seen through the VSphere library: reads the VMs with their
/// cloud-init metadata, reports guest facts the way VMware Tools does, clones demo VMs.
public struct VSphereLabInventory: Sendable {
    /// extraConfig key naming a VM's role (the template it came from). vcsim does not copy a
    /// template's extraConfig into clones, so whoever clones sets it; without it the role is
    /// guessed from the VM name (`staging-redis-01` → redis), else the guest runs no services.
    public static let roleKey = "guestinfo.flotilla.role"

    public let client: VSphereClient
    public let labNetwork: IPv4Network
    /// The password of VMs made by `createGuests`.
    public let demoPassword: String

    public init(client: VSphereClient, labNetwork: IPv4Network, demoPassword: String = "flotilla") {
        self.client = client
        self.labNetwork = labNetwork
        self.demoPassword = demoPassword
    }

    public static func connect(_ vcsim: VcsimProcess, labNetwork: IPv4Network, demoPassword: String) async throws -> VSphereLabInventory {
        try await connect(
            url: vcsim.url, username: vcsim.username, password: vcsim.password,
            thumbprint: vcsim.thumbprint, labNetwork: labNetwork, demoPassword: demoPassword)
    }

    public static func connect(
        url: String, username: String, password: String, thumbprint: String?, labNetwork: IPv4Network, demoPassword: String
    ) async throws -> VSphereLabInventory {
        guard let parsed = URL(string: url) else { throw LabError.vcsimDidNotStart("invalid URL \(url)") }
        let client = try await VSphereClient.connect(
            url: parsed, username: username, password: password, trust: thumbprint.map { .pinnedSHA256($0) } ?? .system)
        return VSphereLabInventory(client: client, labNetwork: labNetwork, demoPassword: demoPassword)
    }

    public func virtualMachines() async throws -> [LabVirtualMachine] {
        let contents = try await client.retrieveFromContainer(
            types: ["VirtualMachine"],
            paths: ["name", "runtime.powerState", "summary.runtime.bootTime", "config.template", "config.extraConfig"])
        return contents.compactMap { content in
            guard let name = content["name"]?.text, content["config.template"]?.text != "true" else { return nil }
            let key = content.object.value
            let extraConfig = (content["config.extraConfig"]?.children ?? []).compactMap { option in
                option.child("key").map { ExtraConfigEntry(key: $0.text, value: option.child("value")?.text ?? "") }
            }
            return LabVirtualMachine(
                key: key, name: name,
                powerState: content["runtime.powerState"].flatMap { LabPowerState(rawValue: $0.text) } ?? .poweredOff,
                // vcsim updates the boot time only under summary.runtime.
                bootTime: content["summary.runtime.bootTime"]?.text,
                guest: guest(key: key, name: name, extraConfig: extraConfig))
        }
    }

    /// The guest a VM's metadata describes (see `LabVirtualMachine.guest`).
    func guest(key: String, name: String, extraConfig: [ExtraConfigEntry]) -> Result<GuestSpec, LabError>? {
        guard extraConfig.contains(where: { $0.key == GuestConfiguration.metadataKey }) else { return nil }
        let configuration: GuestConfiguration
        do {
            configuration = try GuestConfiguration(extraConfig: extraConfig)
        } catch {
            return .failure(.invalidGuest(vm: key, reason: "unreadable guestinfo metadata: \(error)"))
        }
        guard let ipv4 = configuration.ipv4 else { return nil }
        let role = extraConfig.last(where: { $0.key == Self.roleKey })?.value ?? Self.role(fromName: name)
        do {
            return .success(
                try GuestSpec(
                    key: key, hostName: configuration.hostName, address: ipv4.address, prefixLength: ipv4.prefixLength,
                    gateway: ipv4.gateway, dnsServers: ipv4.dns, role: role, user: configuration.user,
                    passwordHash: configuration.passwordHash, authorizedKeys: configuration.authorizedKeys, sudo: configuration.sudo,
                    labNetwork: labNetwork))
        } catch let error as LabError {
            return .failure(error)
        } catch {
            return .failure(.invalidGuest(vm: key, reason: "\(error)"))
        }
    }

    /// The first of the known roles that is a word of the VM name, or "none".
    static func role(fromName name: String) -> String {
        let words = Set(name.lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init))
        return LabConfiguration.defaultRoles.first(where: words.contains) ?? "none"
    }

    public func reportGuest(key: String, ipAddress: String, hostName: String) async throws {
        // vcsim's VMware Tools stand-in: extraConfig `SET.<property>` sets that property.
        try await client.virtualMachine(ManagedObjectReference(type: "VirtualMachine", value: key)).reconfigure(extraConfig: [
            ExtraConfigEntry(key: "SET.guest.ipAddress", value: ipAddress),
            ExtraConfigEntry(key: "SET.guest.hostName", value: hostName),
        ])
    }

    public func close() async {
        try? await client.close()
    }

    /// Clones `count` powered-on VMs named `lab-<role>-<n>` from `tpl-<role>`, round-robin over
    /// the roles, each on the next address of `network` that no VM's metadata uses yet.
    public func createGuests(count: Int, roles: [String], network: IPv4Network) async throws {
        guard count > 0, !roles.isEmpty else { return }
        let existing = try await client.listVirtualMachines()
        var usedNames = Set(existing.map(\.name))
        var usedAddresses = Set(existing.compactMap { try? GuestConfiguration(guestInfo: $0.guestInfo).ipv4?.address })
        let gateway = network.firstHost
        // Guests start at .10 of the range, leaving the first few addresses to the machine.
        var candidate = gateway.value + 9
        let passwordHash = CryptSHA512.hash(password: demoPassword)
        for index in 0..<count {
            let role = roles[index % roles.count]
            var number = 1
            while usedNames.contains("lab-\(role)-\(number)") { number += 1 }
            let name = "lab-\(role)-\(number)"
            while usedAddresses.contains(IPv4Address(candidate).description) { candidate += 1 }
            let address = IPv4Address(candidate)
            guard network.contains(address), address != network.broadcast else {
                throw LabError.invalidGuest(vm: name, reason: "no free address left in \(network)")
            }
            let configuration = GuestConfiguration(
                hostName: name,
                ipv4: .init(address: address.description, prefixLength: network.prefixLength, gateway: gateway.description),
                passwordHash: passwordHash)
            let template = try await client.findTemplate(named: "tpl-\(role)")
            _ = try await client.clone(
                template,
                CloneRequest(
                    name: name,
                    extraConfig: try configuration.extraConfig() + [ExtraConfigEntry(key: Self.roleKey, value: role)],
                    powerOn: true))
            usedNames.insert(name)
            usedAddresses.insert(address.description)
        }
    }
}
