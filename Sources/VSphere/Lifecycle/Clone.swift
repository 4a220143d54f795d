/// What to clone into. Unset placements default to the source's.
public struct CloneRequest: Sendable {
    public enum Method: Sendable, Equatable {
        /// CloneVM_Task on vCenter; the disk-copy path on a standalone ESXi (`HostAgent`).
        case automatic
        /// CloneVM_Task (vCenter only on real systems).
        case cloneTask
        /// CreateVM_Task with the source's hardware plus VirtualDiskManager.CopyVirtualDisk_Task:
        /// what a standalone ESXi needs, since it has no clone call (SPEC ARCH-2).
        case createAndCopyDisks
    }

    public var name: String
    public var folder: ManagedObjectReference?
    public var pool: ManagedObjectReference?
    public var datastore: ManagedObjectReference?
    /// The network of the clone's first network card (a `Network` or a
    /// `DistributedVirtualPortgroup`); the source's card is moved there, or one is added when
    /// the source has none. Nil keeps the source's networks.
    public var network: ManagedObjectReference?
    public var extraConfig: [ExtraConfigEntry]
    public var powerOn: Bool
    public var method: Method

    public init(
        name: String,
        folder: ManagedObjectReference? = nil,
        pool: ManagedObjectReference? = nil,
        datastore: ManagedObjectReference? = nil,
        network: ManagedObjectReference? = nil,
        extraConfig: [ExtraConfigEntry] = [],
        powerOn: Bool = false,
        method: Method = .automatic
    ) {
        self.name = name
        self.folder = folder
        self.pool = pool
        self.datastore = datastore
        self.network = network
        self.extraConfig = extraConfig
        self.powerOn = powerOn
        self.method = method
    }
}

extension VSphereClient {
    /// Clones a template or VM and returns the new VM.
    /// - Parameter progress: task progress 0...100 of the clone (or of each disk copy).
    public func clone(
        _ source: VirtualMachine,
        _ request: CloneRequest,
        timeout: Duration = .seconds(3600),
        progress: (@Sendable (Int) -> Void)? = nil
    ) async throws -> VirtualMachine {
        let facts = try await CloneSource.read(source, client: self)
        let folder = request.folder ?? facts.folder
        let pool: ManagedObjectReference
        if let requested = request.pool {
            pool = requested
        } else {
            pool = try await defaultPool(for: facts)
        }
        var networkBacking: DataObject?
        if let network = request.network {
            networkBacking = try await networkCardBacking(on: network)
        }
        let useDiskCopy: Bool
        switch request.method {
        case .automatic: useDiskCopy = about.apiType == .hostAgent
        case .cloneTask: useDiskCopy = false
        case .createAndCopyDisks: useDiskCopy = true
        }
        let clone: VirtualMachine
        if useDiskCopy {
            clone = try await cloneByCopyingDisks(
                facts, request, folder: folder, pool: pool, networkBacking: networkBacking,
                timeout: timeout, progress: progress)
        } else {
            clone = try await cloneWithTask(
                source, facts, request, folder: folder, pool: pool, networkBacking: networkBacking,
                timeout: timeout, progress: progress)
        }
        // vcsim ignores CloneSpec.powerOn; real vCenter honours it. Either way the outcome is checked.
        if request.powerOn, try await clone.powerState() != .poweredOn {
            try await clone.powerOn(timeout: timeout)
        }
        return clone
    }

    private func cloneWithTask(
        _ source: VirtualMachine,
        _ facts: CloneSource,
        _ request: CloneRequest,
        folder: ManagedObjectReference,
        pool: ManagedObjectReference,
        networkBacking: DataObject?,
        timeout: Duration,
        progress: (@Sendable (Int) -> Void)?
    ) async throws -> VirtualMachine {
        let location = DataObject(nil, [("datastore", request.datastore), ("pool", pool)])
        // The clone's copy of the source's first card keeps its key, so it is edited by that key.
        let networkChange: DataObject? = networkBacking.map { backing in
            guard let card = facts.networkCards.first else {
                return DataObject(nil, [("operation", "add"), ("device", DataObject.networkCard(key: -200, backing: backing))])
            }
            // deviceInfo stays (vSphere and vcsim expect the device as read); the MAC is the clone's own.
            let moved = ElementCopy(element: card, dropping: ["macAddress"], replacing: ["backing": backing])
            return DataObject(nil, [("operation", "edit"), ("device", moved)])
        }
        let config: DataObject? =
            request.extraConfig.isEmpty && networkChange == nil
            ? nil
            : DataObject(nil, [("deviceChange", networkChange.map { [$0] }), ("extraConfig", request.extraConfig.map(\.optionValue))])
        let spec = DataObject(nil, [("location", location), ("template", false), ("config", config), ("powerOn", request.powerOn)])
        let result = try await runTask(
            SOAPOperation("CloneVM_Task", on: source.reference, [("folder", folder), ("name", request.name), ("spec", spec)]),
            timeout: timeout,
            progress: progress
        )
        guard let reference = ManagedObjectReference(result) else {
            throw VSphereError.invalidResponse("CloneVM_Task returned no VM")
        }
        return VirtualMachine(client: self, reference: reference)
    }

    /// The backing that puts a network card on `network`: a standard port group, or a
    /// distributed one (identified by its switch's UUID and its own key).
    private func networkCardBacking(on network: ManagedObjectReference) async throws -> DataObject {
        switch network.type {
        case "Network":
            guard let name = try await property("name", of: network)?.text else { throw VSphereError.notFound("network \(network.value)") }
            return DataObject("VirtualEthernetCardNetworkBackingInfo", [("deviceName", name), ("network", network)])
        case "DistributedVirtualPortgroup":
            let content = try await retrieveProperties(
                of: [network], type: network.type, paths: ["key", "config.distributedVirtualSwitch"]
            ).first
            guard let key = content?["key"]?.text,
                let virtualSwitch = ManagedObjectReference(content?["config.distributedVirtualSwitch"]),
                let switchUUID = try await property("uuid", of: virtualSwitch)?.text
            else {
                throw VSphereError.notFound("the distributed switch of port group \(network.value)")
            }
            return DataObject(
                "VirtualEthernetCardDistributedVirtualPortBackingInfo",
                [
                    ("port", DataObject(nil, [("switchUuid", switchUUID), ("portgroupKey", key)]))
                ])
        default:
            throw VSphereError.notFound("a way to put a network card on a \(network.type) (use a port group)")
        }
    }

    /// A template has no pool: use its host's compute resource's root pool.
    private func defaultPool(for source: CloneSource) async throws -> ManagedObjectReference {
        if let pool = source.pool { return pool }
        guard let host = source.host,
            let computeResource = ManagedObjectReference(try await property("parent", of: host)),
            let pool = ManagedObjectReference(try await property("resourcePool", of: computeResource))
        else {
            throw VSphereError.notFound("a resource pool for \(source.name); pass one in the CloneRequest")
        }
        return pool
    }

    /// The standalone-ESXi path: create an empty VM with the source's hardware, copy each disk
    /// with VirtualDiskManager, attach the copies. On failure the half-made VM is removed.
    private func cloneByCopyingDisks(
        _ source: CloneSource,
        _ request: CloneRequest,
        folder: ManagedObjectReference,
        pool: ManagedObjectReference,
        networkBacking: DataObject?,
        timeout: Duration,
        progress: (@Sendable (Int) -> Void)?
    ) async throws -> VirtualMachine {
        guard let diskManager = serviceContent.virtualDiskManager else {
            throw VSphereError.notFound("VirtualDiskManager on this endpoint")
        }
        let datastore = request.datastore ?? source.datastore
        guard let datastore, let datastoreName = try await property("name", of: datastore)?.text else {
            throw VSphereError.notFound("a datastore for \(request.name); pass one in the CloneRequest")
        }
        let datacenter = try await enclosingDatacenter(of: folder)

        let create = DataObject(
            nil,
            [
                ("name", request.name),
                ("version", source.hardwareVersion),
                ("guestId", source.guestID),
                ("files", DataObject(nil, [("vmPathName", "[\(datastoreName)]")])),
                ("numCPUs", source.cpuCount),
                ("numCoresPerSocket", source.coresPerSocket),
                ("memoryMB", source.memoryMB.map(Int64.init)),
                (
                    "deviceChange",
                    source.controllers.enumerated().map { index, device in
                        DataObject(nil, [("operation", "add"), ("device", ElementCopy.controller(device, key: -100 - index))])
                    }
                        + networkCards(source, backing: networkBacking).map { card in
                            DataObject(nil, [("operation", "add"), ("device", card)])
                        }
                ),
                ("extraConfig", request.extraConfig.map(\.optionValue)),
            ])
        let created = try await runTask(
            SOAPOperation("CreateVM_Task", on: folder, [("config", create), ("pool", pool), ("host", source.host)]),
            timeout: timeout
        )
        guard let reference = ManagedObjectReference(created) else {
            throw VSphereError.invalidResponse("CreateVM_Task returned no VM")
        }
        let clone = VirtualMachine(client: self, reference: reference)
        var copied: [String] = []
        do {
            let newControllers = try await property("config.hardware.device", of: reference)?.children ?? []
            var diskChanges: [DataObject] = []
            for (index, disk) in source.disks.enumerated() {
                let destination = "[\(datastoreName)] \(request.name)/\(request.name)\(index == 0 ? "" : "_\(index)").vmdk"
                let destinationSpec: DataObject? =
                    about.apiType == .hostAgent
                    ? DataObject(
                        "FileBackedVirtualDiskSpec", [("diskType", "thin"), ("adapterType", "lsiLogic"), ("capacityKb", disk.capacityKB)])
                    : nil
                try await runTask(
                    SOAPOperation(
                        "CopyVirtualDisk_Task", on: diskManager,
                        [
                            ("sourceName", disk.fileName), ("sourceDatacenter", datacenter),
                            ("destName", destination), ("destDatacenter", datacenter),
                            ("destSpec", destinationSpec), ("force", false),
                        ]),
                    timeout: timeout,
                    progress: progress
                )
                copied.append(destination)
                guard let controllerKey = source.matchingControllerKey(for: disk, in: newControllers) else {
                    throw VSphereError.invalidResponse("the new VM has no controller for disk \(disk.fileName)")
                }
                diskChanges.append(
                    DataObject(
                        nil,
                        [
                            ("operation", "add"),
                            (
                                "device",
                                DataObject(
                                    "VirtualDisk",
                                    [
                                        ("key", -300 - index),
                                        (
                                            "backing",
                                            DataObject(
                                                "VirtualDiskFlatVer2BackingInfo",
                                                [
                                                    ("fileName", destination), ("diskMode", disk.diskMode), ("thinProvisioned", true),
                                                ])
                                        ),
                                        ("controllerKey", controllerKey),
                                        ("unitNumber", disk.unitNumber),
                                        ("capacityInKB", disk.capacityKB),
                                    ])
                            ),
                        ]))
            }
            if !diskChanges.isEmpty {
                try await runTask(
                    SOAPOperation("ReconfigVM_Task", on: reference, [("spec", DataObject(nil, [("deviceChange", diskChanges)]))]),
                    timeout: timeout
                )
            }
            return clone
        } catch {
            try? await clone.destroy()
            for path in copied {
                _ = try? await runTask(
                    SOAPOperation("DeleteVirtualDisk_Task", on: diskManager, [("name", path), ("datacenter", datacenter)]))
            }
            throw error
        }
    }

    /// The disk-copy path's new cards: copies of the source's, the first one moved to
    /// `backing` (or added on it when the source has none).
    private func networkCards(_ source: CloneSource, backing: DataObject?) -> [any SOAPEncodable] {
        guard let backing else {
            return source.networkCards.enumerated().map { index, card in ElementCopy.networkCard(card, key: -200 - index) }
        }
        guard !source.networkCards.isEmpty else { return [DataObject.networkCard(key: -200, backing: backing)] }
        return source.networkCards.enumerated().map { index, card in
            ElementCopy.networkCard(card, key: -200 - index, backing: index == 0 ? backing : nil)
        }
    }

    /// Walks `parent` up to the Datacenter (VirtualDiskManager needs it on vCenter).
    func enclosingDatacenter(of object: ManagedObjectReference) async throws -> ManagedObjectReference {
        var current = object
        for _ in 0..<32 {
            if current.type == "Datacenter" { return current }
            guard let parent = ManagedObjectReference(try await property("parent", of: current)) else { break }
            current = parent
        }
        throw VSphereError.notFound("the datacenter of \(object)")
    }
}

/// The facts about a source VM that both clone paths need.
struct CloneSource {
    struct Disk {
        var fileName: String
        var capacityKB: Int64
        var controllerKey: Int
        var unitNumber: Int?
        var diskMode: String
    }

    var name: String
    var folder: ManagedObjectReference
    var pool: ManagedObjectReference?
    /// Also the host for CreateVM_Task: on a cluster any host could be picked, and the source's
    /// host is known to reach the source's datastore.
    var host: ManagedObjectReference?
    var datastore: ManagedObjectReference?
    var hardwareVersion: String?
    var guestID: String?
    var cpuCount: Int?
    var coresPerSocket: Int?
    var memoryMB: Int?
    var controllers: [SOAPElement]
    var networkCards: [SOAPElement]
    var disks: [Disk]

    static func read(_ vm: VirtualMachine, client: VSphereClient) async throws -> CloneSource {
        let paths = [
            "name", "parent", "resourcePool", "runtime.host", "datastore", "config.version", "config.guestId",
            "config.hardware.numCPU", "config.hardware.numCoresPerSocket", "config.hardware.memoryMB",
            "config.hardware.device",
        ]
        guard let content = try await client.retrieveProperties(of: [vm.reference], type: "VirtualMachine", paths: paths).first,
            let name = content["name"]?.text,
            let folder = ManagedObjectReference(content["parent"])
        else {
            throw VSphereError.notFound("virtual machine \(vm.reference.value)")
        }
        let devices = content["config.hardware.device"]?.children ?? []
        let disks: [Disk] = devices.compactMap { device in
            guard device.schemaType?.name == "VirtualDisk",
                let fileName = device.descendant("backing", "fileName")?.text,
                let controllerKey = device.child("controllerKey")?.intValue
            else { return nil }
            let capacityKB = device.child("capacityInKB")?.text ?? "0"
            return Disk(
                fileName: fileName,
                capacityKB: Int64(capacityKB) ?? 0,
                controllerKey: controllerKey,
                unitNumber: device.child("unitNumber")?.intValue,
                diskMode: device.descendant("backing", "diskMode")?.text ?? "persistent"
            )
        }
        return CloneSource(
            name: name,
            folder: folder,
            pool: ManagedObjectReference(content["resourcePool"]),
            host: ManagedObjectReference(content["runtime.host"]),
            datastore: content["datastore"]?.children.lazy.compactMap { ManagedObjectReference($0) }.first,
            hardwareVersion: content["config.version"]?.text.nonEmpty,
            guestID: content["config.guestId"]?.text.nonEmpty,
            cpuCount: content["config.hardware.numCPU"]?.intValue,
            coresPerSocket: content["config.hardware.numCoresPerSocket"]?.intValue,
            memoryMB: content["config.hardware.memoryMB"]?.intValue,
            controllers: devices.filter(ElementCopy.isStorageController),
            networkCards: devices.filter(ElementCopy.isNetworkCard),
            disks: disks
        )
    }

    /// The new VM's controller of the same type and bus as the disk's controller on the source.
    func matchingControllerKey(for disk: Disk, in newDevices: [SOAPElement]) -> Int? {
        guard let sourceController = controllers.first(where: { $0.child("key")?.intValue == disk.controllerKey }) else { return nil }
        let bus = sourceController.child("busNumber")?.text
        return newDevices.first { device in
            device.schemaType == sourceController.schemaType && device.child("busNumber")?.text == bus
        }?.child("key")?.intValue
    }
}

extension DataObject {
    /// A new VMXNET3 card on `backing`, connected at power-on, with a generated MAC address.
    static func networkCard(key: Int, backing: DataObject) -> DataObject {
        DataObject(
            "VirtualVmxnet3",
            [
                ("key", key),
                ("backing", backing),
                ("connectable", DataObject(nil, [("startConnected", true), ("allowGuestControl", true), ("connected", false)])),
                ("addressType", "generated"),
            ])
    }
}
