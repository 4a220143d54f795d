/// Re-sends a device read from one VM as a new device for another: the element is written back
/// as received (same xsi:type, same field order), minus the fields that identify the old device.
struct ElementCopy: SOAPEncodable {
    var element: SOAPElement
    /// Top-level fields to leave out.
    var dropping: Set<String>
    /// Top-level fields whose value is replaced in place (schema order matters to vSphere).
    var replacing: [String: any SOAPEncodable]

    static func isStorageController(_ device: SOAPElement) -> Bool {
        guard let type = device.schemaType?.name else { return false }
        return [
            "ParaVirtualSCSIController", "VirtualLsiLogicController", "VirtualLsiLogicSASController",
            "VirtualBusLogicController", "VirtualAHCIController", "VirtualNVMEController",
        ].contains(type)
    }

    static func isNetworkCard(_ device: SOAPElement) -> Bool {
        device.child("addressType") != nil && device.child("backing") != nil
    }

    /// A controller without its attached devices and placement, under a new temporary key.
    static func controller(_ device: SOAPElement, key: Int) -> ElementCopy {
        ElementCopy(
            element: device,
            dropping: ["deviceInfo", "slotInfo", "device", "controllerKey", "unitNumber", "scsiCtlrUnitNumber"],
            replacing: ["key": key]
        )
    }

    /// A network card with the same network backing (or `backing`) and a newly generated MAC address.
    static func networkCard(_ device: SOAPElement, key: Int, backing: (any SOAPEncodable)? = nil) -> ElementCopy {
        var replacing: [String: any SOAPEncodable] = ["key": key, "addressType": "generated"]
        if let backing { replacing["backing"] = backing }
        return ElementCopy(
            element: device,
            dropping: ["deviceInfo", "slotInfo", "controllerKey", "unitNumber", "macAddress", "externalId", "uptCompatibilityEnabled"],
            replacing: replacing
        )
    }

    func encode(into writer: inout XMLWriter, as name: String) {
        Self.write(element, into: &writer, as: name) { child, writer in
            if dropping.contains(child.localName) { return true }
            if let replacement = replacing[child.localName] {
                replacement.encode(into: &writer, as: child.localName)
                return true
            }
            return false
        }
    }

    /// Writes an element and its subtree; `override` may handle a direct child itself.
    static func write(
        _ element: SOAPElement,
        into writer: inout XMLWriter,
        as name: String,
        override: (SOAPElement, inout XMLWriter) -> Bool = { _, _ in false }
    ) {
        var attributes: [(String, String)] = element.attributes.compactMap { attribute in
            attribute.name.namespace == nil ? (attribute.name.name, attribute.value) : nil
        }
        if let type = element.schemaType {
            attributes.append(("xsi:type", type.namespace == XMLNamespace.schema ? "xsd:\(type.name)" : type.name))
        }
        writer.element(name, attributes: attributes) { writer in
            if element.children.isEmpty {
                writer.text(element.text)
            }
            for child in element.children where !override(child, &writer) {
                write(child, into: &writer, as: child.localName)
            }
        }
    }
}
