import VSphere
import XCTVapor

@testable import App

/// A connection's datacenter and network are used when cloning (issue 8, §3: a new VM landed
/// on the template's network). Against vcsim's vCenter model, without the lab.
final class ClonePlacementTests: XCTestCase {
    func testCloneGoesToTheConnectionsNetworkInsideItsDatacenter() async throws {
        let vcsim = try VcsimForTest()
        defer { vcsim.stop() }
        try await TestApp.run(["FLOTILLA_SYNC_SECONDS": "0"]) { app in
            let login = VSphereLogin(
                url: vcsim.url, username: VcsimForTest.username, password: VcsimForTest.password, thumbprint: vcsim.thumbprint)
            let endpoint = try await app.flotilla.vsphere.connect(login)
            let role = Role()
            role.name = "web"
            role.template = "tpl-web"
            let connection = VSphereConnection()
            connection.datacenter = "DC0"
            connection.network = "DC0_DVPG0"

            let (template, request) = try await app.flotilla.vmOperations.clonePlan(
                name: "placed-01", role: role, connection: connection, endpoint: endpoint, extraConfig: [])
            XCTAssertEqual(request.network?.type, "DistributedVirtualPortgroup")
            let clone = try await endpoint.clone(template, request)

            // The library's own reads, on a separate login: the clone's card is on DC0_DVPG0.
            let client = try await VSphereClient.connect(
                url: try XCTUnwrap(URL(string: vcsim.url)), username: VcsimForTest.username,
                password: VcsimForTest.password, trust: .pinnedSHA256(try XCTUnwrap(vcsim.thumbprint)))
            let portgroupKey = try await client.property("key", of: try XCTUnwrap(request.network))?.text
            let devices = try await client.property(
                "config.hardware.device", of: ManagedObjectReference(type: "VirtualMachine", value: clone.reference))
            let cards = devices?.children.filter { $0.child("macAddress") != nil || $0.child("addressType") != nil } ?? []
            XCTAssertEqual(cards.count, 1)
            XCTAssertEqual(cards.first?.descendant("backing", "port", "portgroupKey")?.text, portgroupKey)
            try await client.close()

            connection.datacenter = "DC-elsewhere"
            do {
                _ = try await app.flotilla.vmOperations.clonePlan(
                    name: "placed-02", role: role, connection: connection, endpoint: endpoint, extraConfig: [])
                XCTFail("a datacenter that does not exist was ignored")
            } catch let error as VSphereError {
                XCTAssertTrue("\(error)".contains("DC-elsewhere"), "\(error)")
            }
            await endpoint.close()
        }
    }
}
