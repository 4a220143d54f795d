import VSphere
import Vapor
import Yams

/// An environment described in a document (SPEC BEY-2): roles × counts, an address range,
/// the network and a name pattern. Deploying it creates the environment and all its VMs in
/// one job, VMs in parallel.
///
/// ```yaml
/// name: staging-4
/// description: Staging for the spider team
/// roles: { web: 3, redis: 1, mysql: 1 }
/// network:
///   range: 10.77.20.10-10.77.20.60
///   netmask: 255.255.0.0
///   gateway: 10.77.0.1
///   dns: [10.77.0.1]
/// names: "{env}-{role}-{n}"
/// password: shared      # shared: one password given when deploying; generated: one per VM
/// ```
public struct Blueprint: Codable, Sendable, Equatable {
    public struct Network: Codable, Sendable, Equatable {
        public var range: String
        public var netmask: String
        public var gateway: String
        public var dns: [String]?
    }

    public enum PasswordPolicy: String, Codable, Sendable {
        case shared, generated
    }

    public var name: String
    public var description: String?
    public var roles: [String: Int]
    public var network: Network
    public var names: String?
    public var password: PasswordPolicy?

    public static let defaultNamePattern = "{env}-{role}-{n}"

    public static func parse(_ text: String) throws -> Blueprint {
        guard text.utf8.count <= 64 * 1024 else { throw FlotillaError.validation("a blueprint has at most 64 KB") }
        try YAMLLimits.check(text, what: "the blueprint")
        do {
            return try YAMLDecoder().decode(Blueprint.self, from: text)
        } catch let error as DecodingError {
            throw FlotillaError.validation("the blueprint is not valid: \(error.fieldExplanation)")
        } catch {
            throw FlotillaError.validation("the blueprint is not valid YAML: \(error)")
        }
    }

    public func yaml() throws -> String {
        try YAMLEncoder().encode(self)
    }

    /// One VM the blueprint makes.
    struct PlannedVM: Sendable, Equatable {
        var role: String
        var spec: VMSpec
    }

    /// Expands the blueprint into VMs: roles in name order, addresses taken from the range in order.
    func plan() throws -> [PlannedVM] {
        try Environments.validateName(name)
        guard !roles.isEmpty else { throw FlotillaError.validation("roles: name at least one role with a count") }
        let countRule = FlotillaError.validation("roles: each count is 1 to 500, at most 1000 VMs in all")
        // Each count is bounded before they are added, so the sum cannot overflow.
        guard roles.values.allSatisfy({ (1...500).contains($0) }) else { throw countRule }
        let total = roles.values.reduce(0, +)
        guard total <= 1000 else { throw countRule }
        let bounds = network.range.split(separator: "-").map { $0.trimmingCharacters(in: .whitespaces) }
        guard bounds.count == 2, let first = IPv4Address(bounds[0]), let last = IPv4Address(bounds[1]), first.value <= last.value else {
            throw FlotillaError.validation("network.range must be FIRST-LAST, e.g. 10.0.5.10-10.0.5.60")
        }
        let pattern = names ?? Self.defaultNamePattern
        guard pattern.contains("{n}") else { throw FlotillaError.validation("names must contain {n} so every VM gets its own name") }
        var addresses = (first.value...last.value).lazy.map { IPv4Address($0) }.makeIterator()
        var planned: [PlannedVM] = []
        for (role, count) in roles.sorted(by: { $0.key < $1.key }) {
            for number in 1...count {
                let hostName = pattern.replacingOccurrences(of: "{env}", with: name)
                    .replacingOccurrences(of: "{role}", with: role)
                    .replacingOccurrences(of: "{n}", with: String(format: "%02d", number))
                    .lowercased()
                var candidate = addresses.next()
                // Skip the subnet's own network and broadcast addresses and the gateway.
                while let address = candidate, let mask = VMSpec.prefixLength(network.netmask),
                    address == address.network(prefixLength: mask) || address == address.broadcast(prefixLength: mask)
                        || address.description == network.gateway
                {
                    candidate = addresses.next()
                }
                guard let address = candidate else {
                    throw FlotillaError.validation("network.range holds fewer addresses than the \(total) VMs")
                }
                let dns = network.dns ?? []
                guard dns.count <= 2 else { throw FlotillaError.validation("network.dns lists at most two servers") }
                let spec = try VMSpec(
                    hostName: hostName, ip: address.description, netmask: network.netmask, gateway: network.gateway,
                    dns1: dns.first, dns2: dns.count > 1 ? dns[1] : nil)
                planned.append(PlannedVM(role: role, spec: spec))
            }
        }
        return planned
    }
}
