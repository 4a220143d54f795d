/// An inventory object found by name or path.
public struct InventoryObject: Sendable, Hashable {
    public var reference: ManagedObjectReference
    public var name: String
}

/// What the finder can look for.
public enum InventoryType: String, Sendable, CaseIterable {
    case datacenter = "Datacenter"
    case folder = "Folder"
    case resourcePool = "ResourcePool"
    case datastore = "Datastore"
    case host = "HostSystem"
    case network = "Network"
    case virtualMachine = "VirtualMachine"
    case computeResource = "ComputeResource"
}

extension VSphereClient {
    /// Finds an object by its inventory path (`DC0/vm/web-01`, `DC0/host/DC0_C0/Resources`)
    /// through SearchIndex, or by its name anywhere below `container` (a datacenter, say; the
    /// whole inventory when nil). Several objects of one type may share a name (e.g. every
    /// cluster's pool is `Resources`): the first is returned, so use a path when that matters.
    public func find(
        _ type: InventoryType,
        named nameOrPath: String,
        in container: ManagedObjectReference? = nil
    ) async throws -> InventoryObject {
        if nameOrPath.contains("/"), let searchIndex = serviceContent.searchIndex {
            let returned = try await connection.invokeReturning(
                SOAPOperation("FindByInventoryPath", on: searchIndex, [("inventoryPath", nameOrPath)])
            )
            if let reference = ManagedObjectReference(returned.first),
                reference.type == type.rawValue || (type == .network && reference.type.hasSuffix("Network"))
                    || (type == .computeResource && reference.type == "ClusterComputeResource")
            {
                let name = String(nameOrPath.split(separator: "/").last ?? "")
                return InventoryObject(reference: reference, name: name)
            }
            throw VSphereError.notFound("\(type.rawValue) at \(nameOrPath)")
        }
        let matches = try await retrieveFromContainer(root: container, types: [type.rawValue], paths: ["name"])
            .filter { $0["name"]?.text == nameOrPath }
            .sorted { $0.object.value.localizedStandardLess($1.object.value) }
        guard let match = matches.first else {
            throw VSphereError.notFound("\(type.rawValue) named \(nameOrPath)\(container.map { " in \($0)" } ?? "")")
        }
        return InventoryObject(reference: match.object, name: nameOrPath)
    }

    /// All objects of a type, with their names.
    public func list(_ type: InventoryType) async throws -> [InventoryObject] {
        try await retrieveFromContainer(types: [type.rawValue], paths: ["name"]).compactMap { content in
            content["name"].map { InventoryObject(reference: content.object, name: $0.text) }
        }
    }

    /// The datacenter of that name, or the only one when `name` is nil.
    public func datacenter(named name: String? = nil) async throws -> Datacenter {
        let found: InventoryObject
        if let name {
            found = try await find(.datacenter, named: name)
        } else {
            let all = try await list(.datacenter)
            guard all.count == 1, let only = all.first else {
                throw VSphereError.notFound("a single datacenter (found \(all.count)); name one")
            }
            found = only
        }
        let content = try await retrieveProperties(
            of: [found.reference], type: "Datacenter", paths: ["vmFolder", "hostFolder", "datastoreFolder", "networkFolder"]
        ).first
        guard let vmFolder = ManagedObjectReference(content?["vmFolder"]),
            let hostFolder = ManagedObjectReference(content?["hostFolder"])
        else {
            throw VSphereError.invalidResponse("datacenter \(found.name) without vmFolder/hostFolder")
        }
        return Datacenter(reference: found.reference, name: found.name, vmFolder: vmFolder, hostFolder: hostFolder)
    }
}

/// A datacenter and the folders clones go into.
public struct Datacenter: Sendable, Hashable {
    public var reference: ManagedObjectReference
    public var name: String
    public var vmFolder: ManagedObjectReference
    public var hostFolder: ManagedObjectReference
}

extension String {
    /// Orders `vm-9` before `vm-10`.
    func localizedStandardLess(_ other: String) -> Bool {
        let left = self.split(whereSeparator: { !$0.isNumber }).last.flatMap { Int($0) }
        let right = other.split(whereSeparator: { !$0.isNumber }).last.flatMap { Int($0) }
        if let left, let right, left != right { return left < right }
        return self < other
    }
}
