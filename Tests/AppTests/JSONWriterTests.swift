import Foundation
import Vapor
import XCTest

@testable import App

/// `JSONWriter` writes what the server's `JSONEncoder` writes for the same values (issue 8 §5):
/// each hand-written type is compared with its `Encodable` form, as parsed JSON.
final class JSONWriterTests: XCTestCase {
    /// Quotes, backslashes, slashes, control characters and non-ASCII text.
    static let awkward = "a \"quoted\" \\ path/to\nline\ttab\u{01}\u{1F} é ✓"

    func testListsAreWrittenAsTheEncoderWritesThem() throws {
        let date = Date(timeIntervalSince1970: 1_790_000_000.75)
        let id = UUID()
        let request = PageRequest(page: 3, per: 20)

        try assertSameJSON(
            ListResponse(
                Page(
                    items: [
                        Environments.Row(id: id, name: "env-1", description: Self.awkward, vmCount: 12),
                        Environments.Row(id: UUID(), name: "\"edge/\\", description: "", vmCount: 0),
                    ], total: 42, request: request)))

        let user = User(username: "ops", passwordHash: "unused", role: .ordinary, email: nil, fullName: Self.awkward)
        user.id = id
        user.createdAt = date
        let withEmail = User(username: "admin", passwordHash: "unused", role: .system, email: "a@example.org", fullName: nil)
        withEmail.id = UUID()
        withEmail.lastSignInAt = date
        try assertSameJSON(ListResponse(Page(items: [try API.UserBody(user), try API.UserBody(withEmail)], total: 2, request: request)))

        let listing = VMListing(
            id: id, hostName: "web-01", ip: "10.0.0.1", role: "web", environmentID: UUID(), environment: "staging", status: "ready",
            powerState: "poweredOn", guestOS: "Debian/12", cpus: 2, memoryMB: 4096, diskGB: 40, notes: Self.awkward, health: "up",
            healthLabel: "up", reason: "answers ping (0.4 ms)", reachable: true)
        var sparse = listing
        (sparse.powerState, sparse.guestOS, sparse.cpus, sparse.memoryMB, sparse.diskGB, sparse.reachable) = (
            nil, nil, nil, nil, 40.5, false
        )
        var tiny = listing
        tiny.diskGB = 0.1
        try assertSameJSON(ListResponse(Page(items: [listing, sparse, tiny], total: 5000, request: request)))
        try assertSameJSON(ListResponse(Page(items: [VMListing](), total: 0, request: request)))

        try assertSameJSON(
            API.DashboardSummary(
                FleetStatus.Summary(
                    total: 3, reachable: 1, unreachable: 1, checking: 1,
                    roles: [
                        FleetStatus.RoleCount(role: "web", total: 2, reachable: 1, unreachable: 1, checking: 0),
                        FleetStatus.RoleCount(role: Self.awkward, total: 1, reachable: 0, unreachable: 0, checking: 1),
                    ], sequence: 77)))
    }

    func testTheResponseIsJSON() throws {
        let response = ListResponse(Page(items: [VMListing](), total: 0, request: PageRequest())).writtenResponse()
        XCTAssertEqual(response.status, .ok)
        XCTAssertEqual(response.headers.contentType, .json)
        XCTAssertEqual(response.body.string, #"{"items":[],"total":0,"page":1,"per":10}"#)
    }

    private func assertSameJSON<Value: Encodable & JSONWritable>(_ value: Value, file: StaticString = #filePath, line: UInt = #line) throws
    {
        var json = JSONWriter()
        value.write(to: &json)
        let written = Data(json.buffer.readableBytesView)
        let encoded = try ContentConfiguration.global.requireEncoder(for: .json)
        var body = ByteBuffer()
        var headers = HTTPHeaders()
        try encoded.encode(value, to: &body, headers: &headers)
        XCTAssertEqual(try canonical(written), try canonical(Data(body.readableBytesView)), file: file, line: line)
    }

    private func assertSameJSON<Item>(_ list: ListResponse<Item>, file: StaticString = #filePath, line: UInt = #line) throws
    where Item: JSONWritable & Content {
        let written = Data(try XCTUnwrap(list.writtenResponse().body.buffer).readableBytesView)
        let encoded = try ContentConfiguration.global.requireEncoder(for: .json)
        var body = ByteBuffer()
        var headers = HTTPHeaders()
        try encoded.encode(list, to: &body, headers: &headers)
        XCTAssertEqual(try canonical(written), try canonical(Data(body.readableBytesView)), file: file, line: line)
    }

    /// The JSON parsed and written again with sorted keys: equal text means equal values.
    private func canonical(_ data: Data) throws -> String {
        let parsed = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        return String(decoding: try JSONSerialization.data(withJSONObject: parsed, options: [.sortedKeys]), as: UTF8.self)
    }
}
