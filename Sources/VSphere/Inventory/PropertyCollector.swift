/// One object's properties as the PropertyCollector returned them.
public struct ObjectContent: Sendable {
    public var object: ManagedObjectReference
    /// Property path → value element. Each `propSet` is one path, so this is unambiguous.
    public var properties: [String: SOAPElement]
    /// Paths the server could not read (vcsim reports unknown paths here, not as a fault).
    public var missing: [String]

    public subscript(path: String) -> SOAPElement? { properties[path] }

    init?(_ element: SOAPElement) {
        guard let object = ManagedObjectReference(element.child("obj")) else { return nil }
        self.object = object
        var properties: [String: SOAPElement] = [:]
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
            let selection: DataObject? =
                traverseContainerView
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
        var objects: [ObjectContent] = []
        try await retrieveProperties(spec, pageSize: pageSize) { objects.append($0) }
        return objects
    }

    /// RetrievePropertiesEx handing over each object as soon as it is parsed, so that a large
    /// inventory is never held as one XML tree; follows continuation tokens.
    public func retrieveProperties(
        _ spec: PropertyFilterSpec,
        pageSize: Int? = nil,
        forEach body: (ObjectContent) throws -> Void
    ) async throws {
        let collector = serviceContent.propertyCollector
        var operation = SOAPOperation(
            "RetrievePropertiesEx", on: collector, [("specSet", spec), ("options", DataObject(nil, [("maxObjects", pageSize)]))]
        )
        while true {
            var token: String?
            _ = try await connection.invoke(operation, streaming: ["returnval"]) { element in
                switch element.localName {
                case "objects":
                    if let content = ObjectContent(element) { try body(content) }
                case "token":
                    token = element.text.nonEmpty
                default:
                    break
                }
            }
            guard let token else { return }
            operation = SOAPOperation("ContinueRetrievePropertiesEx", on: collector, [("token", token)])
        }
    }

    /// Reads properties of known objects.
    public func retrieveProperties(of objects: [ManagedObjectReference], type: String, paths: [String]) async throws -> [ObjectContent] {
        guard !objects.isEmpty else { return [] }
        return try await retrieveProperties(PropertyFilterSpec(propertySpecs: [.init(type: type, paths: paths)], objects: objects))
    }

    /// Reads one property of one object (nil when unset).
    public func property(_ path: String, of object: ManagedObjectReference) async throws -> SOAPElement? {
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
        var objects: [ObjectContent] = []
        try await retrieveFromContainer(root: root, types: types, paths: paths, pageSize: pageSize) { objects.append($0) }
        return objects
    }

    /// As above, handing over each object as soon as it is parsed.
    public func retrieveFromContainer(
        root: ManagedObjectReference? = nil,
        types: [String],
        paths: [String],
        pageSize: Int? = nil,
        forEach body: (ObjectContent) throws -> Void
    ) async throws {
        let view = try await createContainerView(root: root ?? serviceContent.rootFolder, types: types)
        do {
            try await retrieveProperties(
                PropertyFilterSpec(
                    propertySpecs: types.map { .init(type: $0, paths: paths) }, objects: [view], traverseContainerView: true),
                pageSize: pageSize,
                forEach: body
            )
            try await destroyView(view)
        } catch {
            try? await destroyView(view)
            throw error
        }
    }

    public func createContainerView(
        root: ManagedObjectReference, types: [String], recursive: Bool = true
    ) async throws -> ManagedObjectReference {
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
