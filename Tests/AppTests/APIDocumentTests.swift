import XCTVapor

@testable import App

final class APIDocumentTests: XCTestCase {
    /// The OpenAPI document names exactly the registered API routes, with their permissions.
    func testDocumentMatchesTheRegisteredRoutes() async throws {
        try await TestApp.run { app in
            let registered = Set(
                app.routes.all.filter { $0.path.first == "api" }.map { route in
                    "\(route.method.rawValue) /"
                        + route.path.map { component in
                            if case .parameter(let name) = component { return "{\(name)}" }
                            return component.description
                        }.joined(separator: "/")
                })
            let response = try await TestClient(app).request(.GET, "/api/v1/openapi.json")
            XCTAssertEqual(response.status, .ok)
            let document = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
            XCTAssertEqual(document["openapi"] as? String, "3.0.3")
            let paths = try XCTUnwrap(document["paths"] as? [String: [String: Any]])
            var documented = Set<String>()
            for (path, operations) in paths {
                for (method, operation) in operations {
                    documented.insert("\(method.uppercased()) \(path)")
                    let action = try XCTUnwrap((operation as? [String: Any])?["x-flotilla-action"] as? String)
                    let route = app.routes.all.first { route in
                        route.method.rawValue == method.uppercased()
                            && "/"
                                + route.path.map { component in
                                    if case .parameter(let name) = component { return "{\(name)}" }
                                    return component.description
                                }.joined(separator: "/") == path
                    }
                    XCTAssertEqual(route?.requiredAction?.rawValue, action, "\(method) \(path)")
                }
            }
            XCTAssertEqual(documented, registered)
        }
    }
}
