import Foundation
import XCTest

@testable import VSphere

/// XML, fault and paging decoding on recorded responses: no simulator needed.
final class DecodingTests: XCTestCase {
    func testSchemaTypeIsMatchedByNamespaceNotPrefix() throws {
        let xml = """
            <r xmlns="urn:vim25" xmlns:a="http://www.w3.org/2001/XMLSchema-instance" xmlns:b="urn:other">
              <v a:type="VirtualDisk"/><w b:type="NotASchemaType"/>
              <x xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="xsd:string" xmlns:xsd="http://www.w3.org/2001/XMLSchema">t</x>
            </r>
            """
        let root = try XMLDocumentParser.parse(xml)
        XCTAssertEqual(root.name, QualifiedName(namespace: "urn:vim25", name: "r"))
        XCTAssertEqual(root.child("v")?.schemaType, QualifiedName(namespace: "urn:vim25", name: "VirtualDisk"))
        XCTAssertNil(root.child("w")?.schemaType, "b:type is not in the XMLSchema-instance namespace")
        XCTAssertEqual(root.child("x")?.schemaType, QualifiedName(namespace: XMLNamespace.schema, name: "string"))
        XCTAssertEqual(root.child("x")?.text, "t")
    }

    func testEntitiesCDATAAndComments() throws {
        let root = try XMLDocumentParser.parse(
            "<?xml version=\"1.0\"?><!-- c --><a k='1 &amp; 2'>x &lt;&#65;&#x42;&gt; <![CDATA[<raw>]]></a>")
        XCTAssertEqual(root.attribute("k"), "1 & 2")
        XCTAssertEqual(root.text, "x <AB> <raw>")
    }

    func testChunkedInputParsesLikeWholeInput() throws {
        let document = Array(Recorded.secondPage.utf8)
        let whole = try XMLDocumentParser.parse(document).description
        for chunkSize in [1, 2, 3, 5, 8, 13, 64, 1000] {
            var parser = XMLDocumentParser(streaming: nil)
            for start in stride(from: 0, to: document.count, by: chunkSize) {
                try parser.feed(Array(document[start..<min(start + chunkSize, document.count)])) { _ in }
            }
            XCTAssertEqual(try parser.finish { _ in }.description, whole, "chunks of \(chunkSize)")
        }
    }

    func testStreamedElementsLeaveTheTree() throws {
        var parser = XMLDocumentParser(streaming: ["r", "list"])
        var handed: [String] = []
        try parser.feed(Array("<r><list><i>1</i><i>2</i></list><other><i>3</i></other></r>".utf8)) { handed.append($0.text) }
        let root = try parser.finish { handed.append($0.text) }
        XCTAssertEqual(handed, ["1", "2"])
        XCTAssertEqual(root.child("list")?.children.count, 0)
        XCTAssertEqual(root.child("other")?.children.count, 1)
    }

    func testTruncatedDocumentFails() {
        var parser = XMLDocumentParser(streaming: nil)
        XCTAssertNoThrow(try parser.feed(Array("<a><b>text".utf8)) { _ in })
        XCTAssertThrowsError(try parser.finish { _ in })
    }

    func testMalformedXMLAndDTDAreRejected() {
        XCTAssertThrowsError(try XMLDocumentParser.parse("<a><b></a>"))
        XCTAssertThrowsError(try XMLDocumentParser.parse("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>"))
        XCTAssertThrowsError(try XMLDocumentParser.parse("<p:a/>"), "undeclared prefix")
    }

    func testRequestEnvelope() {
        let operation = SOAPOperation(
            "CloneVM_Task", on: ManagedObjectReference(type: "VirtualMachine", value: "vm-57"),
            [
                ("folder", ManagedObjectReference(type: "Folder", value: "folder-3")),
                ("name", "web <01>"),
                (
                    "spec",
                    DataObject(
                        nil,
                        [
                            (
                                "config",
                                DataObject(nil, [("extraConfig", [ExtraConfigEntry(key: "guestinfo.a", value: "b&c").optionValue])])
                            ), ("powerOn", false),
                        ])
                ),
                ("absent", nil),
            ])
        let xml = operation.envelope()
        XCTAssertTrue(
            xml.contains(
                "<CloneVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">vm-57</_this><folder type=\"Folder\">folder-3</folder><name>web &lt;01&gt;</name>"
            ))
        XCTAssertTrue(
            xml.contains(
                "<extraConfig xsi:type=\"OptionValue\"><key>guestinfo.a</key><value xsi:type=\"xsd:string\">b&amp;c</value></extraConfig>"))
        XCTAssertFalse(xml.contains("absent"))
        XCTAssertNoThrow(try XMLDocumentParser.parse(xml))
    }

    func testFaultsCarryTheirVSphereName() throws {
        XCTAssertThrowsError(try SOAPConnection.decode(status: 500, body: Array(Recorded.invalidLogin.utf8), method: "Login")) { error in
            guard case VSphereError.fault(let fault) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(fault.name, .invalidLogin)
            XCTAssertEqual(fault.message, "Login failure")
        }
        let unknown = Recorded.envelope(
            "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>x</faultstring><detail><VmWareBrandNewFault xsi:type=\"VmWareBrandNew\"/></detail></soapenv:Fault>"
        )
        XCTAssertThrowsError(try SOAPConnection.decode(status: 500, body: Array(unknown.utf8), method: "X")) { error in
            XCTAssertEqual((error as? VSphereError)?.faultName?.rawValue, "VmWareBrandNew")
        }
        XCTAssertThrowsError(try SOAPConnection.decode(status: 502, body: Array("<html>bad gateway".utf8), method: "X")) { error in
            guard case VSphereError.invalidResponse = error else { return XCTFail("\(error)") }
        }
    }

    func testListingFollowsContinuationTokensAndLastExtraConfigWins() async throws {
        let transport = RecordedTransport([
            "RetrieveServiceContent": [(200, Recorded.serviceContent)],
            "Login": [(200, Recorded.login)],
            "CreateContainerView": [(200, Recorded.createView)],
            "RetrievePropertiesEx": [(200, Recorded.firstPage)],
            "ContinueRetrievePropertiesEx": [(200, Recorded.secondPage)],
            "DestroyView": [(200, Recorded.destroyView)],
        ])
        let client = try await VSphereClient.connect(transport: transport, username: "u", password: "p")
        XCTAssertEqual(client.about.apiType, .virtualCenter)
        let vms = try await client.listVirtualMachines(pageSize: 2)
        XCTAssertEqual(vms.map(\.name), ["web-01", "tpl-web", "db-01"])
        XCTAssertEqual(vms.map(\.isTemplate), [false, true, false])
        XCTAssertEqual(vms[0].powerState, .poweredOn)
        XCTAssertEqual(vms[0].guestIPAddress, "10.0.0.1")
        XCTAssertNil(vms[0].guestHostName, "missingSet paths stay nil")
        XCTAssertEqual(vms[0].cpuCount, 2)
        XCTAssertEqual(vms[0].memoryMB, 2048)
        XCTAssertEqual(vms[0].diskGB ?? 0, 17, accuracy: 0.001)
        XCTAssertEqual(vms[2].guestInfo, ["guestinfo.role": "mysql"])
        XCTAssertEqual(
            transport.methods,
            [
                "RetrieveServiceContent", "Login", "CreateContainerView", "RetrievePropertiesEx", "ContinueRetrievePropertiesEx",
                "DestroyView",
            ])
        let sent = transport.sent.withLockedValue { $0 }
        XCTAssertEqual(sent[3].soapAction, "urn:vim25/6.5")
        XCTAssertEqual(sent[3].sessionCookie, "\"recorded-session\"")
        XCTAssertTrue(sent[3].body.contains("<maxObjects>2</maxObjects>"))
        XCTAssertTrue(sent[4].body.contains("<token>page-2</token>"))
    }

    func testOverviewListingAsksForSixProperties() async throws {
        XCTAssertEqual(
            VMSummary.Fields.overview.propertyPaths,
            ["name", "runtime.powerState", "config.template", "guest.ipAddress", "guest.hostName", "config.guestFullName"]
        )
        let transport = RecordedTransport([
            "RetrieveServiceContent": [(200, Recorded.serviceContent)],
            "Login": [(200, Recorded.login)],
            "CreateContainerView": [(200, Recorded.createView)],
            "RetrievePropertiesEx": [
                (
                    200,
                    Recorded.secondPage.replacingOccurrences(
                        of: "ContinueRetrievePropertiesExResponse", with: "RetrievePropertiesExResponse")
                )
            ],
            "DestroyView": [(200, Recorded.destroyView)],
        ])
        let client = try await VSphereClient.connect(transport: transport, username: "u", password: "p")
        _ = try await client.listVirtualMachines(fields: .overview)
        let body = try XCTUnwrap(
            transport.sent.withLockedValue { $0.first { RecordedTransport.method(in: $0.body) == "RetrievePropertiesEx" } }?.body)
        XCTAssertEqual(body.components(separatedBy: "<pathSet>").count - 1, 6)
        XCTAssertFalse(body.contains("config.hardware.device"))
    }

    func testReloginOnceAfterNotAuthenticated() async throws {
        let transport = RecordedTransport([
            "RetrieveServiceContent": [(200, Recorded.serviceContent)],
            "Login": [(200, Recorded.login)],
            "CreateContainerView": [(500, Recorded.notAuthenticated), (200, Recorded.createView)],
            "RetrievePropertiesEx": [
                (
                    200,
                    Recorded.secondPage.replacingOccurrences(
                        of: "ContinueRetrievePropertiesExResponse", with: "RetrievePropertiesExResponse")
                )
            ],
            "DestroyView": [(200, Recorded.destroyView)],
        ])
        let client = try await VSphereClient.connect(transport: transport, username: "u", password: "p")
        let vms = try await client.listVirtualMachines()
        XCTAssertEqual(vms.count, 1)
        XCTAssertEqual(
            transport.methods,
            [
                "RetrieveServiceContent", "Login", "CreateContainerView", "Login", "CreateContainerView", "RetrievePropertiesEx",
                "DestroyView",
            ])
    }

    func testTaskErrorBecomesTypedFault() async throws {
        let transport = RecordedTransport([
            "RetrieveServiceContent": [(200, Recorded.serviceContent)],
            "Login": [(200, Recorded.login)],
            "RetrievePropertiesEx": [(200, Recorded.taskError)],
        ])
        let client = try await VSphereClient.connect(transport: transport, username: "u", password: "p")
        let task = VSphereTask(reference: ManagedObjectReference(type: "Task", value: "task-7"), client: client)
        do {
            try await task.wait(timeout: .seconds(5))
            XCTFail("expected a fault")
        } catch VSphereError.fault(let fault) {
            XCTAssertEqual(fault.name, .invalidPowerState)
            XCTAssertTrue(fault.message.contains("Powered on"))
            XCTAssertEqual(fault.detail?.child("existingState")?.text, "poweredOn")
        }
    }

    func testPerformanceDecodingIsTimeOrderedAndInPercent() throws {
        let xml = """
            <r xmlns="urn:vim25" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><returnval xsi:type="PerfEntityMetric"><entity type="VirtualMachine">vm-1</entity>
            <sampleInfo><timestamp>2026-11-27T17:22:40.123456789Z</timestamp><interval>20</interval></sampleInfo>
            <sampleInfo><timestamp>2026-11-27T17:22:20.123456789Z</timestamp><interval>20</interval></sampleInfo>
            <value xsi:type="PerfMetricIntSeries"><id><counterId>2</counterId><instance></instance></id><value>569</value><value>1200</value></value>
            <value xsi:type="PerfMetricIntSeries"><id><counterId>98</counterId><instance></instance></id><value>2048</value><value>1024</value></value>
            </returnval></r>
            """
        let metrics = try XMLDocumentParser.parse(xml).children("returnval")
        let counters = [
            2: PerformanceCounter(key: 2, name: "cpu.usage.average", unit: "percent"),
            98: PerformanceCounter(key: 98, name: "mem.consumed.average", unit: "kiloBytes"),
        ]
        let decoded = VSphereClient.decodePerformance(metrics, counters: counters)
        let vm = ManagedObjectReference(type: "VirtualMachine", value: "vm-1")
        let cpu = try XCTUnwrap(decoded[vm]?["cpu.usage.average"])
        XCTAssertEqual(cpu.samples.map(\.value), [12.0, 5.69])
        XCTAssertLessThan(cpu.samples[0].timestamp, cpu.samples[1].timestamp)
        XCTAssertEqual(cpu.samples[1].timestamp.timeIntervalSince1970, 1_795_800_160.123456789, accuracy: 0.000_001)
        XCTAssertEqual(decoded[vm]?["mem.consumed.average"]?.samples.map(\.value), [1024, 2048])
    }

    func testTimestampParsing() throws {
        let date = try XCTUnwrap(VSphereClient.parseTimestamp("2026-11-27T17:22:40+01:00"))
        XCTAssertEqual(date.timeIntervalSince1970, 1_795_796_560)
        XCTAssertNil(VSphereClient.parseTimestamp("yesterday"))
    }
}
