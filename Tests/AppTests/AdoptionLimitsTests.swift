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
    /// A wrong guest password is bad input: a 400 naming the guest, and no VM of the request is
    /// adopted, not even the ones before it whose password was right (issue 14, was a 500).
    func testAWrongGuestPasswordIsA400AndAdoptsNothing() async throws {
        try await InMemoryWorld.run { world in
            for (name, address, password) in [
                ("old-app-1", "10.77.7.21", InMemoryWorld.guestPassword), ("old-app-2", "10.77.7.22", "Other-pass-2"),
            ] {
                await world.vsphere.addMachine(name, guestIPAddress: address)
                await world.shell.add(.init(hostName: name, password: password), at: address)
            }
            let answer = try await world.admin.request(
                .POST, "/api/v1/environments/\(world.environmentID)/adopt",
                json: VSphereImport.Input(
                    connectionID: world.connectionID, names: ["old-app-1", "old-app-2"], role: "web",
                    password: InMemoryWorld.guestPassword))
            XCTAssertEqual(answer.status, .badRequest, answer.body.string)
            XCTAssertTrue(answer.body.string.contains("old-app-2 refused the password"), answer.body.string)
            let environment = try world.admin.decode(
                API.EnvironmentBody.self, try await world.admin.request(.GET, "/api/v1/environments/\(world.environmentID)"))
            XCTAssertEqual(environment.vms.map(\.hostName), [], "nothing adopted")
        }
    }
}
