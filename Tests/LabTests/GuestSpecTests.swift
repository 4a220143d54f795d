import Lab
import VSphere
import XCTest

/// Metadata checks that keep guests inside the lab's own address range (no root needed).
final class GuestSpecTests: XCTestCase {
    private let lab = IPv4Network("10.77.0.0/16")!

    private func spec(
        address: String = "10.77.1.10", prefix: Int = 16, gateway: String? = "10.77.0.1", hostName: String = "web-01",
        user: String = "root", hash: String? = "$6$salt$abc"
    ) throws -> GuestSpec {
        try GuestSpec(
            key: "vm-42", hostName: hostName, address: address, prefixLength: prefix, gateway: gateway,
            dnsServers: ["10.77.0.1"], role: "web", user: user, passwordHash: hash, labNetwork: lab)
    }

    func testAcceptsAnAddressInsideTheLabNetwork() throws {
        let guest = try spec()
        XCTAssertEqual(guest.address.description, "10.77.1.10")
        XCTAssertEqual(guest.gateway?.description, "10.77.0.1")
    }

    func testRefusesAddressesOutsideTheLabNetwork() {
        XCTAssertThrowsError(try spec(address: "192.168.1.10", prefix: 24, gateway: "192.168.1.1"))
        XCTAssertThrowsError(try spec(address: "10.78.0.10"))
        // Inside the range, but a wider prefix would put other networks on the guest's link.
        XCTAssertThrowsError(try spec(prefix: 8))
        XCTAssertThrowsError(try spec(gateway: "10.1.0.1"))
    }

    func testRefusesTheGatewayNetworkAndBroadcastAddresses() {
        XCTAssertThrowsError(try spec(address: "10.77.0.1"))
        XCTAssertThrowsError(try spec(address: "10.77.0.0"))
        XCTAssertThrowsError(try spec(address: "10.77.255.255"))
    }

    func testRefusesValuesThatCouldInjectIntoFilesOrCommands() {
        XCTAssertThrowsError(try spec(address: "10.77.1.10; reboot"))
        XCTAssertThrowsError(try spec(address: "10.77.01.10"))
        XCTAssertThrowsError(try spec(hostName: "web 01"))
        XCTAssertThrowsError(try spec(hostName: "web\n01"))
        XCTAssertThrowsError(try spec(hostName: "-web"))
        XCTAssertThrowsError(try spec(user: "root:0"))
        XCTAssertThrowsError(try spec(hash: "plain password"))
        XCTAssertThrowsError(try spec(hash: "$6$a$b\nroot2::0:0"))
    }

    func testAuthorizedKeysAndSudoRulesAreChecked() throws {
        func spec(keys: [String], sudo: String? = nil) throws -> GuestSpec {
            try GuestSpec(
                key: "vm-42", hostName: "web-01", address: "10.77.1.10", prefixLength: 16, gateway: "10.77.0.1",
                dnsServers: [], role: "web", user: "deploy", passwordHash: nil, authorizedKeys: keys, sudo: sudo, labNetwork: lab)
        }
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBMCdFYcbgWrUuWI0Ck5fX4QmySZJKWTeo1gVNlLa4NB flotilla@host"
        let guest = try spec(keys: [key], sudo: "ALL=(ALL) NOPASSWD:ALL")
        XCTAssertEqual(guest.authorizedKeys, [key])
        XCTAssertEqual(guest.sudo, "ALL=(ALL) NOPASSWD:ALL")
        XCTAssertThrowsError(try spec(keys: [key + "\nssh-ed25519 AAAA other"]))
        XCTAssertThrowsError(try spec(keys: ["command=\"reboot\" " + key]))
        XCTAssertThrowsError(try spec(keys: ["ssh-ed25519"]))
        XCTAssertThrowsError(try spec(keys: [key], sudo: "ALL=(ALL) NOPASSWD:ALL\nroot ALL=(ALL) ALL"))
        XCTAssertThrowsError(try spec(keys: [key], sudo: ""))
    }

    func testNetworkArithmetic() throws {
        let network = try XCTUnwrap(IPv4Network("10.77.3.4/16"))
        XCTAssertEqual(network.description, "10.77.0.0/16")
        XCTAssertEqual(network.firstHost.description, "10.77.0.1")
        XCTAssertEqual(network.broadcast.description, "10.77.255.255")
        XCTAssertTrue(network.contains(try XCTUnwrap(IPv4Network("10.77.8.0/24"))))
        XCTAssertFalse(network.contains(try XCTUnwrap(IPv4Network("10.0.0.0/8"))))
        XCTAssertNil(IPv4Network("10.77.0.0/33"))
        XCTAssertNil(IPv4Address("256.1.1.1"))
    }
}
