/// What a VM list shows: identity, state, guest facts, size and the `guestinfo.*` handoff keys.
public struct VMSummary: Sendable, Equatable {
    public var reference: ManagedObjectReference
    public var name: String
    public var powerState: PowerState
    public var isTemplate: Bool
    public var guestIPAddress: String?
    public var guestHostName: String?
    /// The guest OS as configured (e.g. "Ubuntu Linux (64-bit)").
    public var guestOS: String?
    public var cpuCount: Int?
    public var memoryMB: Int?
    /// Sum of the virtual disks' capacities, in GiB.
    public var diskGB: Double?
    /// `guestinfo.*` extraConfig keys; when a key repeats, the last occurrence wins.
    public var guestInfo: [String: String]
    public var parentFolder: ManagedObjectReference?
    public var resourcePool: ManagedObjectReference?

    /// A summary made by hand (in-memory stand-ins for vSphere in tests).
    public init(
        reference: ManagedObjectReference, name: String, powerState: PowerState, isTemplate: Bool = false,
        guestIPAddress: String? = nil, guestHostName: String? = nil, guestOS: String? = nil, cpuCount: Int? = nil,
        memoryMB: Int? = nil, diskGB: Double? = nil, guestInfo: [String: String] = [:],
        parentFolder: ManagedObjectReference? = nil, resourcePool: ManagedObjectReference? = nil
    ) {
        self.reference = reference
        self.name = name
        self.powerState = powerState
        self.isTemplate = isTemplate
        self.guestIPAddress = guestIPAddress
        self.guestHostName = guestHostName
        self.guestOS = guestOS
        self.cpuCount = cpuCount
        self.memoryMB = memoryMB
        self.diskGB = diskGB
        self.guestInfo = guestInfo
        self.parentFolder = parentFolder
        self.resourcePool = resourcePool
    }
}

public enum PowerState: String, Sendable {
    case poweredOn, poweredOff, suspended
}

extension VMSummary {
    /// Which groups of fields a listing reads. Name, power state and template flag always come;
    /// leaving out groups makes large listings cheaper (the device list is most of the bytes).
    public struct Fields: OptionSet, Sendable, Hashable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }

        /// Guest IP address, guest host name, guest OS.
        public static let guest = Fields(rawValue: 1 << 0)
        /// CPUs and memory.
        public static let hardware = Fields(rawValue: 1 << 1)
        /// Disk capacity (reads the whole device list).
        public static let disks = Fields(rawValue: 1 << 2)
        /// `guestinfo.*` extraConfig.
        public static let guestInfo = Fields(rawValue: 1 << 3)
        /// Parent folder and resource pool.
        public static let placement = Fields(rawValue: 1 << 4)

        /// What a dashboard row shows without sizes: six properties.
        public static let overview: Fields = [.guest]
        public static let all: Fields = [.guest, .hardware, .disks, .guestInfo, .placement]

        /// The PropertyCollector paths these fields need.
        public var propertyPaths: [String] {
            var paths = ["name", "runtime.powerState", "config.template"]
            if contains(.guest) { paths += ["guest.ipAddress", "guest.hostName", "config.guestFullName"] }
            if contains(.hardware) { paths += ["config.hardware.numCPU", "config.hardware.memoryMB"] }
            if contains(.disks) { paths.append("config.hardware.device") }
            if contains(.guestInfo) { paths.append("config.extraConfig") }
            if contains(.placement) { paths += ["parent", "resourcePool"] }
            return paths
        }
    }

    init?(_ content: ObjectContent) {
        guard let name = content["name"]?.text else { return nil }
        reference = content.object
        self.name = name
        powerState = content["runtime.powerState"].flatMap { PowerState(rawValue: $0.text) } ?? .poweredOff
        isTemplate = content["config.template"]?.boolValue ?? false
        guestIPAddress = content["guest.ipAddress"]?.text.nonEmpty
        guestHostName = content["guest.hostName"]?.text.nonEmpty
        guestOS = content["config.guestFullName"]?.text.nonEmpty
        cpuCount = content["config.hardware.numCPU"]?.intValue
        memoryMB = content["config.hardware.memoryMB"]?.intValue
        diskGB = content["config.hardware.device"].map(Self.diskCapacityGB)
        guestInfo = content["config.extraConfig"].map { OptionValues.guestInfo(in: $0) } ?? [:]
        parentFolder = ManagedObjectReference(content["parent"])
        resourcePool = ManagedObjectReference(content["resourcePool"])
    }

    /// Sums `capacityInKB` of the VirtualDisk devices in an ArrayOfVirtualDevice.
    public static func diskCapacityGB(_ devices: SOAPElement) -> Double {
        var kilobytes = 0
        for device in devices.children where device.schemaType?.name == "VirtualDisk" {
            let bytes = device.child("capacityInBytes")?.intValue
            kilobytes += bytes.map { $0 / 1024 } ?? device.child("capacityInKB")?.intValue ?? 0
        }
        return Double(kilobytes) / (1024 * 1024)
    }
}

/// Reading OptionValue arrays (extraConfig).
enum OptionValues {
    /// All key/value pairs in order (keys may repeat: vcsim appends instead of replacing).
    static func pairs(in array: SOAPElement) -> [(key: String, value: String)] {
        array.children.compactMap { option in
            guard let key = option.child("key")?.text else { return nil }
            return (key, option.child("value")?.text ?? "")
        }
    }

    static func guestInfo(in array: SOAPElement) -> [String: String] {
        var values: [String: String] = [:]
        for (key, value) in pairs(in: array) where key.hasPrefix("guestinfo.") {
            values[key] = value
        }
        return values
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}

extension VSphereClient {
    /// Every VM and template with the chosen fields of `VMSummary`, in one RetrievePropertiesEx
    /// over a ContainerView (following continuation tokens on large inventories).
    /// Fields not asked for stay nil (or empty for `guestInfo`).
    public func listVirtualMachines(
        fields: VMSummary.Fields = .all,
        under root: ManagedObjectReference? = nil,
        pageSize: Int? = nil
    ) async throws -> [VMSummary] {
        var summaries: [VMSummary] = []
        try await retrieveFromContainer(root: root, types: ["VirtualMachine"], paths: fields.propertyPaths, pageSize: pageSize) { content in
            if let summary = VMSummary(content) { summaries.append(summary) }
        }
        return summaries
    }

    /// One VM's summary.
    public func summary(of vm: ManagedObjectReference) async throws -> VMSummary {
        guard let content = try await retrieveProperties(of: [vm], type: "VirtualMachine", paths: VMSummary.Fields.all.propertyPaths).first,
            let summary = VMSummary(content)
        else {
            throw VSphereError.notFound("virtual machine \(vm.value)")
        }
        return summary
    }

    /// The VM or template with that name (or inventory path).
    public func findVirtualMachine(named name: String, in container: ManagedObjectReference? = nil) async throws -> VirtualMachine {
        VirtualMachine(client: self, reference: try await find(.virtualMachine, named: name, in: container).reference)
    }

    /// A template by name; fails with `notFound` if the VM of that name is not a template.
    public func findTemplate(named name: String, in container: ManagedObjectReference? = nil) async throws -> VirtualMachine {
        let vm = try await findVirtualMachine(named: name, in: container)
        guard try await property("config.template", of: vm.reference)?.boolValue == true else {
            throw VSphereError.notFound("template \(name) (a VM of that name exists but is not a template)")
        }
        return vm
    }
}
