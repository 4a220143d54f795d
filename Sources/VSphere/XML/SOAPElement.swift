/// Namespace URIs the vSphere wire format uses.
public enum XMLNamespace {
    public static let vim25 = "urn:vim25"
    public static let soapEnvelope = "http://schemas.xmlsoap.org/soap/envelope/"
    public static let schemaInstance = "http://www.w3.org/2001/XMLSchema-instance"
    public static let schema = "http://www.w3.org/2001/XMLSchema"
}

/// A name qualified by its namespace URI, never by its prefix: prefixes are arbitrary
/// (vcsim writes `XMLSchema-instance:type`, vCenter `xsi:type`).
public struct QualifiedName: Hashable, Sendable, CustomStringConvertible {
    public var namespace: String?
    public var name: String

    public init(namespace: String?, name: String) {
        self.namespace = namespace
        self.name = name
    }

    public var description: String { namespace.map { "{\($0)}\(name)" } ?? name }
}

/// One element of a parsed SOAP message: a deliberately small tree. (Not named XMLElement, which
/// Foundation already defines on Apple platforms.)
public struct SOAPElement: Sendable, CustomStringConvertible {
    public struct Attribute: Sendable {
        public var name: QualifiedName
        public var value: String
    }

    public var name: QualifiedName
    public var attributes: [Attribute]
    /// The `xsi:type` attribute resolved against the namespaces in scope.
    public var schemaType: QualifiedName?
    public var children: [SOAPElement]
    /// Character data directly inside this element (concatenated).
    public var text: String

    public init(
        name: QualifiedName,
        attributes: [Attribute] = [],
        schemaType: QualifiedName? = nil,
        children: [SOAPElement] = [],
        text: String = ""
    ) {
        self.name = name
        self.attributes = attributes
        self.schemaType = schemaType
        self.children = children
        self.text = text
    }

    /// The local name, which is what vim25 payloads are matched on (all in `urn:vim25`).
    public var localName: String { name.name }

    /// The first child with this local name.
    public func child(_ localName: String) -> SOAPElement? {
        children.first { $0.name.name == localName }
    }

    /// All children with this local name, in document order.
    public func children(_ localName: String) -> [SOAPElement] {
        children.filter { $0.name.name == localName }
    }

    /// Follows a chain of child names, e.g. `element.descendant("info", "state")`.
    public func descendant(_ path: String...) -> SOAPElement? {
        var current: SOAPElement? = self
        for step in path { current = current?.child(step) }
        return current
    }

    /// The value of an attribute without a namespace (e.g. `type` on a ManagedObjectReference).
    public func attribute(_ localName: String) -> String? {
        attributes.first { $0.name.namespace == nil && $0.name.name == localName }?.value
    }

    public var description: String {
        var out = "<\(name.name)"
        if let schemaType { out += " xsi:type=\"\(schemaType.name)\"" }
        for attribute in attributes where attribute.name.namespace == nil {
            out += " \(attribute.name.name)=\"\(attribute.value)\""
        }
        out += ">"
        out += XMLWriter.escape(text)
        for child in children { out += child.description }
        return out + "</\(name.name)>"
    }
}

extension SOAPElement {
    var boolValue: Bool? {
        switch text {
        case "true", "1": return true
        case "false", "0": return false
        default: return nil
        }
    }

    var intValue: Int? { Int(text) }
}
