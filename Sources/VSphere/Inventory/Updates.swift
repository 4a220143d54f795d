import NIOConcurrencyHelpers

/// One property change in a WaitForUpdatesEx answer.
public struct PropertyChange: Sendable {
    public enum Operation: String, Sendable {
        case add, remove, assign, indirectRemove
    }

    public var path: String
    public var operation: Operation
    /// The new value (nil for removals).
    public var value: SOAPElement?
}

/// What happened to one object since the previous version.
public struct ObjectUpdate: Sendable {
    public enum Kind: String, Sendable {
        /// The object came into view (first answer: every object).
        case enter
        case modify
        /// The object left the view (e.g. destroyed).
        case leave
    }

    public var kind: Kind
    public var object: ManagedObjectReference
    public var changes: [PropertyChange]
}

/// A change feed over a set of objects: the first `next()` returns the current state of all of
/// them (`enter`), later calls only what changed. Built on its own PropertyCollector, so it
/// does not disturb other users of the session's collector. Call `close()` when done.
public final class PropertyWatch: Sendable {
    let client: VSphereClient
    let collector: ManagedObjectReference
    let view: ManagedObjectReference
    private let version = NIOLockedValueBox<String>("")

    init(client: VSphereClient, collector: ManagedObjectReference, view: ManagedObjectReference) {
        self.client = client
        self.collector = collector
        self.view = view
    }

    /// Waits up to `maxWaitSeconds` for changes; returns [] when nothing changed in that time.
    public func next(maxWaitSeconds: Int = 30) async throws -> [ObjectUpdate] {
        let since = version.withLockedValue { $0 }
        let options = DataObject(nil, [("maxWaitSeconds", maxWaitSeconds)])
        let returned = try await client.connection.invokeReturning(
            SOAPOperation("WaitForUpdatesEx", on: collector, [("version", since), ("options", options)])
        )
        guard let updateSet = returned.first else { return [] }
        if let newVersion = updateSet.child("version")?.text {
            version.withLockedValue { $0 = newVersion }
        }
        return updateSet.children("filterSet").flatMap { $0.children("objectSet") }.compactMap { object in
            guard let reference = ManagedObjectReference(object.child("obj")),
                let kind = object.child("kind").flatMap({ ObjectUpdate.Kind(rawValue: $0.text) })
            else { return nil }
            let changes = object.children("changeSet").compactMap { change -> PropertyChange? in
                guard let path = change.child("name")?.text,
                    let operation = change.child("op").flatMap({ PropertyChange.Operation(rawValue: $0.text) })
                else { return nil }
                return PropertyChange(path: path, operation: operation, value: change.child("val"))
            }
            return ObjectUpdate(kind: kind, object: reference, changes: changes)
        }
    }

    /// Destroys the collector (and its filter) and the view.
    public func close() async throws {
        _ = try await client.connection.invoke(SOAPOperation("DestroyPropertyCollector", on: collector))
        try await client.destroyView(view)
    }
}

extension VSphereClient {
    /// Starts a change feed over every object of `types` below `root` (default: the whole inventory).
    public func watch(
        types: [String] = ["VirtualMachine"],
        paths: [String] = ["name", "runtime.powerState", "guest.ipAddress", "config.template"],
        root: ManagedObjectReference? = nil
    ) async throws -> PropertyWatch {
        let view = try await createContainerView(root: root ?? serviceContent.rootFolder, types: types)
        let created = try await connection.invokeReturning(SOAPOperation("CreatePropertyCollector", on: serviceContent.propertyCollector))
        guard let collector = ManagedObjectReference(created.first) else {
            try? await destroyView(view)
            throw VSphereError.invalidResponse("CreatePropertyCollector returned nothing")
        }
        let spec = PropertyFilterSpec(
            propertySpecs: types.map { .init(type: $0, paths: paths) }, objects: [view], traverseContainerView: true)
        _ = try await connection.invoke(SOAPOperation("CreateFilter", on: collector, [("spec", spec), ("partialUpdates", false)]))
        return PropertyWatch(client: self, collector: collector, view: view)
    }
}
