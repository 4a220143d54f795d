/// A value that can be written as the content of a named SOAP element.
public protocol SOAPEncodable: Sendable {
    func encode(into writer: inout XMLWriter, as name: String)
}

/// A reference to a server-side managed object, e.g. `VirtualMachine:vm-42`.
public struct ManagedObjectReference: Hashable, Sendable, CustomStringConvertible, SOAPEncodable {
    public var type: String
    public var value: String

    public init(type: String, value: String) {
        self.type = type
        self.value = value
    }

    /// Reads `<x type="T">value</x>`.
    public init?(_ element: SOAPElement?) {
        guard let element, let type = element.attribute("type"), !element.text.isEmpty else { return nil }
        self.init(type: type, value: element.text)
    }

    public var description: String { "\(type):\(value)" }

    public func encode(into writer: inout XMLWriter, as name: String) {
        writer.element(name, text: value, attributes: [("type", type)])
    }
}

extension String: SOAPEncodable {
    public func encode(into writer: inout XMLWriter, as name: String) { writer.element(name, text: self) }
}

extension Int: SOAPEncodable {
    public func encode(into writer: inout XMLWriter, as name: String) { writer.element(name, text: String(self)) }
}

extension Int64: SOAPEncodable {
    public func encode(into writer: inout XMLWriter, as name: String) { writer.element(name, text: String(self)) }
}

extension Bool: SOAPEncodable {
    public func encode(into writer: inout XMLWriter, as name: String) { writer.element(name, text: self ? "true" : "false") }
}

/// Arrays are repeated elements, as in the vim25 schema.
extension Array: SOAPEncodable where Element: SOAPEncodable {
    public func encode(into writer: inout XMLWriter, as name: String) {
        for element in self { element.encode(into: &writer, as: name) }
    }
}

/// A vim25 data object: ordered fields (the schema is a sequence) and, where the declared type
/// is abstract or a base class, its concrete `xsi:type`.
public struct DataObject: SOAPEncodable {
    public var schemaType: String?
    public var fields: [(String, any SOAPEncodable)]

    public init(_ schemaType: String? = nil, _ fields: [(String, (any SOAPEncodable)?)]) {
        self.schemaType = schemaType
        self.fields = fields.compactMap { name, value in value.map { (name, $0) } }
    }

    public func encode(into writer: inout XMLWriter, as name: String) {
        let attributes = schemaType.map { [("xsi:type", $0)] } ?? []
        writer.element(name, attributes: attributes) { writer in
            for (fieldName, value) in fields { value.encode(into: &writer, as: fieldName) }
        }
    }
}

/// A primitive inside an `xsd:anyType` slot (e.g. `OptionValue.value`), which needs its xsi:type.
public struct AnyTypeValue: SOAPEncodable {
    public var schemaType: String
    public var text: String

    public static func string(_ value: String) -> AnyTypeValue { AnyTypeValue(schemaType: "xsd:string", text: value) }

    public func encode(into writer: inout XMLWriter, as name: String) {
        writer.element(name, text: text, attributes: [("xsi:type", schemaType)])
    }
}

/// One call: the method, the object it is invoked on, and its arguments in schema order.
public struct SOAPOperation: Sendable {
    public var method: String
    public var this: ManagedObjectReference
    public var arguments: [(String, any SOAPEncodable)]

    public init(_ method: String, on this: ManagedObjectReference, _ arguments: [(String, (any SOAPEncodable)?)] = []) {
        self.method = method
        self.this = this
        self.arguments = arguments.compactMap { name, value in value.map { (name, $0) } }
    }

    /// The complete SOAP 1.1 envelope.
    public func envelope() -> String {
        var writer = XMLWriter()
        writer.element(
            "soapenv:Envelope",
            attributes: [
                ("xmlns:soapenv", XMLNamespace.soapEnvelope),
                ("xmlns:xsd", XMLNamespace.schema),
                ("xmlns:xsi", XMLNamespace.schemaInstance),
            ]
        ) { writer in
            writer.element("soapenv:Body") { writer in
                writer.element(method, attributes: [("xmlns", XMLNamespace.vim25)]) { writer in
                    this.encode(into: &writer, as: "_this")
                    for (name, value) in arguments { value.encode(into: &writer, as: name) }
                }
            }
        }
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>" + writer.output
    }
}
