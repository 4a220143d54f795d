import XCTVapor

@testable import App

/// The schema checker `APIContractTests` relies on: it must fail on a deliberately wrong
/// schema, or the contract test proves nothing.
final class OpenAPISchemaCheckerTests: XCTestCase {
    private func json(_ text: String) throws -> JSONValue {
        try JSONValue.parse(Data(text.utf8))
    }

    func testARealAnswerFitsItsSchemaAndFailsDeliberatelyWrongOnes() async throws {
        try await TestApp.run { app in
            let admin = try TestClient(app)
            try await admin.signIn("admin", TestApp.adminPassword)
            let answer = try await admin.request(.GET, "/api/v1/users?q=admin")
            let document = try JSONValue.parse(Data(buffer: try await admin.request(.GET, "/api/v1/openapi.json").body))
            let value = try JSONValue.parse(Data(buffer: answer.body))
            let checker = OpenAPISchemaChecker(document)
            guard case .schema(let schema) = checker.documented(.GET, "/api/v1/users", status: 200) else {
                return XCTFail("GET /api/v1/users documents no answer 200")
            }
            XCTAssertEqual(checker.documented(.GET, "/api/v1/users", status: 418), .undocumentedStatus)
            XCTAssertEqual(checker.documented(.DELETE, "/api/v1/users/{id}", status: 204), .noBody)
            XCTAssertEqual(
                checker.documented(.GET, "/api/v1/users", status: 200, contentType: "text/html"),
                .undocumentedContentType(documented: ["application/json"]))
            XCTAssertEqual(checker.problems(value, schema), [])

            func brokenUser(_ change: (inout [String: JSONValue]) -> Void) throws -> [String] {
                guard case .object(var root) = document, case .object(var components) = root["components"],
                    case .object(var schemas) = components["schemas"], case .object(var user) = schemas["User"]
                else {
                    XCTFail("the document has no User schema")
                    return []
                }
                change(&user)
                schemas["User"] = .object(user)
                components["schemas"] = .object(schemas)
                root["components"] = .object(components)
                return OpenAPISchemaChecker(.object(root)).problems(value, schema)
            }
            func setProperty(_ name: String, _ property: JSONValue) -> (inout [String: JSONValue]) -> Void {
                { user in
                    guard case .object(var properties) = user["properties"] else { return }
                    properties[name] = property
                    user["properties"] = .object(properties)
                }
            }
            XCTAssertEqual(
                try brokenUser { $0["required"] = try? self.json(#"["id", "username", "role", "nickname"]"#) },
                ["$.items[0]: required field nickname is missing"])
            let mistyped = try brokenUser(setProperty("id", try json(#"{"type": "integer"}"#)))
            XCTAssertEqual(mistyped.count, 1)
            XCTAssertTrue(
                mistyped.first?.hasPrefix("$.items[0].id: ") == true && mistyped.first?.hasSuffix("is not of type integer") == true,
                "\(mistyped)")
            XCTAssertEqual(
                try brokenUser(setProperty("role", try json(#"{"type": "string", "enum": ["ordinary"]}"#))),
                [#"$.items[0].role: "system" is not one of ["\"ordinary\""]"#])
            let closed = try brokenUser { user in
                user["additionalProperties"] = .bool(false)
                guard case .object(var properties) = user["properties"] else { return }
                properties["createdAt"] = nil
                user["properties"] = .object(properties)
            }
            XCTAssertEqual(closed, ["$.items[0]: undocumented field createdAt"])
        }
    }

    func testTypesNullsReferencesAndMapsAreCheckedStrictly() throws {
        let checker = OpenAPISchemaChecker(
            try json(
                ##"{"components": {"schemas": {"Count": {"type": "integer", "minimum": 1}, "Map": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Count"}}}}}"##
            ))
        XCTAssertEqual(checker.problems(try json("true"), try json(#"{"type": "integer"}"#)), ["$: true is not of type integer"])
        XCTAssertEqual(checker.problems(try json("1"), try json(#"{"type": "boolean"}"#)), ["$: 1 is not of type boolean"])
        XCTAssertEqual(checker.problems(try json("1.5"), try json(#"{"type": "integer"}"#)), ["$: 1.5 is not of type integer"])
        XCTAssertEqual(checker.problems(try json("2"), try json(#"{"type": "number"}"#)), [])
        XCTAssertEqual(
            checker.problems(try json("null"), try json(#"{"type": "string"}"#)), ["$: null where the schema does not allow it"])
        XCTAssertEqual(
            checker.problems(try json("[null]"), try json(#"{"type": "array", "items": {"type": "number", "nullable": true}}"#)), [])
        XCTAssertEqual(
            checker.problems(try json(##"{"a": 2, "b": 0}"##), try json(##"{"$ref": "#/components/schemas/Map"}"##)), ["$.b: 0.0 < 1.0"])
        XCTAssertEqual(
            checker.problems(try json("1"), try json(##"{"$ref": "#/components/schemas/Missing"}"##)),
            ["$: unknown reference #/components/schemas/Missing"])
        XCTAssertEqual(
            checker.problems(try json(#""a""#), try json(#"{"type": "string", "pattern": "^b$"}"#)),
            [#"$: the checker does not know ["pattern"]"#], "an unknown keyword fails instead of passing")
    }

    func testConcretePathsFindTheirTemplateLiteralSegmentsFirst() async throws {
        try await TestApp.run { app in
            let client = try TestClient(app)
            let checker = try await APIContract(client).checker
            XCTAssertEqual(checker.template(.POST, for: "/api/v1/vms/power"), "/api/v1/vms/power")
            XCTAssertEqual(checker.template(.GET, for: "/api/v1/vms/\(UUID())?range=6h"), "/api/v1/vms/{id}")
            XCTAssertEqual(checker.template(.POST, for: "/api/v1/users/me/password"), "/api/v1/users/me/password")
            XCTAssertNil(checker.template(.PUT, for: "/api/v1/users"))
            XCTAssertEqual(checker.pathParameterProblems(.GET, "/api/v1/users/{id}", "/api/v1/users/\(UUID())"), [])
            XCTAssertEqual(
                checker.pathParameterProblems(.GET, "/api/v1/users/{id}", "/api/v1/users/me"),
                [#"path parameter id: "me" is not a UUID"#])
        }
    }
}
