import VSphere
import XCTVapor

@testable import App

/// A VM's guest metadata is whatever its owner wrote: adopting one with an impossible prefix
/// is a 400, not a trap in the subnet arithmetic (security review, finding 8).
final class AdoptionLimitsTests: XCTestCase {
    func testImpossiblePrefixesInGuestMetadataAreRefused() async throws {
        try await InMemoryWorld.run { world in
            for (name, address, prefix) in [
                ("odd-1", "10.77.7.10", Int.min), ("odd-2", "255.255.255.255", 32), ("odd-3", "10.77.7.12", 99),
            ] {
                let metadata = GuestConfiguration(hostName: name, ipv4: .init(address: address, prefixLength: prefix))
                await world.vsphere.addMachine(
                    name, extraConfig: Dictionary(uniqueKeysWithValues: try metadata.extraConfig().map { ($0.key, $0.value) }))
                let answer = try await world.admin.request(
                    .POST, "/api/v1/environments/\(world.environmentID)/adopt",
                    json: VSphereImport.Input(
                        connectionID: world.connectionID, names: [name], role: "web", password: InMemoryWorld.guestPassword))
                XCTAssertEqual(answer.status, .badRequest, "\(name): \(answer.body.string)")
                XCTAssertTrue(answer.body.string.contains("prefix length"), answer.body.string)
            }
            let vms = try await world.admin.request(.GET, "/api/v1/environments/\(world.environmentID)")
            XCTAssertEqual(vms.status, .ok, "the server is still up")
        }
    }
}
