import VSphere
import XCTest

final class IPv4AddressTests: XCTestCase {
    func testParsesOnlyPlainDottedQuads() {
        XCTAssertEqual(IPv4Address("10.77.5.9")?.value, 0x0A4D_0509)
        for bad in ["256.1.1.1", "10.0.0", "10.0.0.1.2", "010.0.0.1", "10.0.0.-1", "10.0.0.1 ", "a.b.c.d", ""] {
            XCTAssertNil(IPv4Address(bad), bad)
        }
    }

    func testOrdersNumerically() {
        let sorted = ["10.0.0.10", "10.0.0.9", "9.255.255.255"].compactMap { IPv4Address($0) }.sorted()
        XCTAssertEqual(sorted.map(\.description), ["9.255.255.255", "10.0.0.9", "10.0.0.10"])
    }

    func testSubnetArithmetic() throws {
        let address = try XCTUnwrap(IPv4Address("10.77.20.130"))
        XCTAssertEqual(address.network(prefixLength: 25).description, "10.77.20.128")
        XCTAssertEqual(address.broadcast(prefixLength: 25).description, "10.77.20.255")
        XCTAssertEqual(IPv4Address.netmask(prefixLength: 20).description, "255.255.240.0")
        XCTAssertEqual(IPv4Address.netmask(prefixLength: 0).description, "0.0.0.0")
    }

    func testNetmaskToPrefix() {
        XCTAssertEqual(IPv4Address.prefixLength(netmask: "255.255.255.0"), 24)
        XCTAssertEqual(IPv4Address.prefixLength(netmask: "255.255.240.0"), 20)
        XCTAssertEqual(IPv4Address.prefixLength(netmask: "255.255.255.255"), 32)
        XCTAssertEqual(IPv4Address.prefixLength(netmask: "0.0.0.0"), 0)
        XCTAssertNil(IPv4Address.prefixLength(netmask: "255.0.255.0"))
        XCTAssertNil(IPv4Address.prefixLength(netmask: "255.255.255"))
    }
}
