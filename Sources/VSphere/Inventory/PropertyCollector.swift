/// One object's properties as the PropertyCollector returned them.
public struct ObjectContent: Sendable {
    public var object: ManagedObjectReference
    /// Property path → value element. Each `propSet` is one path, so this is unambiguous.
    public var properties: [String: XMLElement]
    /// Paths the server could not read (vcsim reports unknown paths here, not as a fault).
    public var missing: [String]

    public subscript(path: String) -> XMLElement? { properties[path] }

    init?(_ element: XMLElement) {
        guard let object = ManagedObjectReference(element.child("obj")) else { return nil }
        self.object = object
        var properties: [String: XMLElement] = [:]
        var missing: [String] = []
        for child in element.children {
            switch child.localName {
            case "propSet":
                if let name = child.child("name")?.text, let value = child.child("val") {
                    properties[name] = value
                }
            case "missingSet":
                if let path = child.child("path")?.text { missing.append(path) }
            default:
                break
            }
        }
        self.properties = properties
        self.missing = missing
    }
}

/// A PropertyFilterSpec: which properties of which types, starting where, traversing how.
public struct PropertyFilterSpec: SOAPEncodable {
    public struct PropertySpec: Sendable {
        public var type: String
        public var paths: [String]
        public init(type: String, paths: [String]) {
            self.type = type
            self.paths = paths
        }
    }

    public var propertySpecs: [PropertySpec]
    public var objects: [ManagedObjectReference]
    /// When set, the objects are ContainerViews whose `view` is traversed (their own properties skipped).
    public var traverseContainerView: Bool

    public init(propertySpecs: [PropertySpec], objects: [ManagedObjectReference], traverseContainerView: Bool = false) {
        self.propertySpecs = propertySpecs
        self.objects = objects
        self.traverseContainerView = traverseContainerView
    }

    public func encode(into writer: inout XMLWriter, as name: String) {
        var fields: [(String, (any SOAPEncodable)?)] = propertySpecs.map { spec in
            ("propSet", DataObject(nil, [("type", spec.type), ("all", spec.paths.isEmpty ? true : nil), ("pathSet", spec.paths)]))
        }
        for object in objects {
            let selection: DataObject? = traverseContainerView
                ? DataObject("TraversalSpec", [("name", "traverseView"), ("type", "ContainerView"), ("path", "view"), ("skip", false)])
                : nil
            fields.append(("objectSet", DataObject(nil, [("obj", object), ("skip", traverseContainerView), ("selectSet", selection)])))
        }
        DataObject(nil, fields).encode(into: &writer, as: name)
    }
}

extension VSphereClient {
    /// RetrievePropertiesEx, following `ContinueRetrievePropertiesEx` tokens until the result is complete.
    public func retrieveProperties(_ spec: PropertyFilterSpec, pageSize: Int? = nil) async throws -> [ObjectContent] {
        let collector = serviceContent.propertyCollector
        let options = DataObject(nil, [("maxObjects", pageSize)])
        var returned = try await connection.invokeReturning(
            SOAPOperation("RetrievePropertiesEx", on: collector, [("specSet", spec), ("options", options)])
        ).first
        var objects: [ObjectContent] = []
        while let result = returned {
            objects.append(contentsOf: result.children("objects").compactMap(ObjectContent.init))
            guard let token = result.child("token")?.text, !token.isEmpty else { break }
            returned = try await connection.invokeReturning(
                SOAPOperation("ContinueRetrievePropertiesEx", on: collector, [("token", token)])
            ).first
        }
        return objects
    }

    /// Reads properties of known objects.
    public func retrieveProperties(of objects: [ManagedObjectReference], type: String, paths: [String]) async throws -> [ObjectContent] {
        guard !objects.isEmpty else { return [] }
        return try await retrieveProperties(PropertyFilterSpec(propertySpecs: [.init(type: type, paths: paths)], objects: objects))
    }

    /// Reads one property of one object (nil when unset).
    public func property(_ path: String, of object: ManagedObjectReference) async throws -> XMLElement? {
        try await retrieveProperties(of: [object], type: object.type, paths: [path]).first?[path]
    }

    /// Reads properties of every object of the given types below `root`, through a ContainerView
    /// that is destroyed afterwards.
    public func retrieveFromContainer(
        root: ManagedObjectReference? = nil,
        types: [String],
        paths: [String],
        pageSize: Int? = nil
    ) async throws -> [ObjectContent] {
        let view = try await createContainerView(root: root ?? serviceContent.rootFolder, types: types)
        do {
            let objects = try await retrieveProperties(
                PropertyFilterSpec(propertySpecs: types.map { .init(type: $0, paths: paths) }, objects: [view], traverseContainerView: true),
                pageSize: pageSize
            )
            try await destroyView(view)
            return objects
        } catch {
            try? await destroyView(view)
            throw error
        }
    }

    public func createContainerView(root: ManagedObjectReference, types: [String], recursive: Bool = true) async throws -> ManagedObjectReference {
        guard let viewManager = serviceContent.viewManager else {
            throw VSphereError.invalidResponse("this endpoint has no ViewManager")
        }
        let returned = try await connection.invokeReturning(
            SOAPOperation("CreateContainerView", on: viewManager, [("container", root), ("type", types), ("recursive", recursive)])
        )
        guard let view = ManagedObjectReference(returned.first) else {
            throw VSphereError.invalidResponse("CreateContainerView returned no view")
        }
        return view
    }

    public func destroyView(_ view: ManagedObjectReference) async throws {
        _ = try await connection.invoke(SOAPOperation("DestroyView", on: view))
    }
}
