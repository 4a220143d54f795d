import XCTVapor

@testable import App

/// "Edit as a blueprint" and "Clone environment": an environment written back as a blueprint.
final class BlueprintExportTests: XCTestCase {
    func testExportedRangeRunsFromTheLowestToTheHighestAddress() async throws {
        try await InMemoryWorld.run { world in
            try await world.addReadyVM("web-01", "10.77.5.9")
            try await world.addReadyVM("web-02", "10.77.5.10")
            try await world.addReadyVM("redis-01", "10.77.5.100", role: "redis")
            let exported = try world.admin.decode(
                API.BlueprintText.self,
                try await world.admin.request(.GET, "/api/v1/environments/\(world.environmentID)/blueprint"))
            let blueprint = try Blueprint.parse(exported.blueprint)
            XCTAssertEqual(blueprint.network.range, "10.77.5.9-10.77.5.100")
            XCTAssertEqual(blueprint.roles, ["web": 2, "redis": 1])
            var renamed = blueprint
            renamed.name = "staging-copy"
            XCTAssertNoThrow(try renamed.plan(), "the planner accepts what the export wrote")
        }
    }
}
