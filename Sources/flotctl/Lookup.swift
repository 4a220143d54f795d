import Foundation

/// Finding things by the names people type (or by ID) and reading every page of a list.
extension APIClient {
    /// Every item of a paged list, read 100 at a time.
    func allPages<Item: Decodable & Sendable>(_ type: Item.Type, _ path: String, query: [(String, String)] = []) async throws -> [Item] {
        var items: [Item] = []
        var page = 1
        while true {
            let answer = try await get(Shapes.Page<Item>.self, path, query: query + [("page", String(page)), ("per", "100")]).value
            items += answer.items
            guard !answer.items.isEmpty, items.count < answer.total else { return items }
            page += 1
        }
    }

    /// An environment's ID from its name or ID.
    func environmentID(_ nameOrID: String) async throws -> String {
        if UUID(uuidString: nameOrID) != nil { return nameOrID }
        let environments = try await allPages(Shapes.EnvironmentRow.self, "/environments")
        guard let match = environments.first(where: { $0.name == nameOrID }) else {
            throw ClientFailure(.notFound, "no environment named '\(nameOrID)'")
        }
        return match.id
    }

    /// A VM's ID from its host name or ID (host names are unique across environments).
    func vmID(_ hostNameOrID: String) async throws -> String {
        if UUID(uuidString: hostNameOrID) != nil { return hostNameOrID }
        for environment in try await allPages(Shapes.EnvironmentRow.self, "/environments") where environment.vmCount != 0 {
            let vms = try await get(Shapes.Environment.self, "/environments/\(environment.id)").value.vms
            if let match = vms.first(where: { $0.hostName == hostNameOrID }) { return match.id }
        }
        throw ClientFailure(.notFound, "no VM named '\(hostNameOrID)'")
    }

    /// A user's ID from their user name or ID.
    func userID(_ nameOrID: String) async throws -> String {
        if UUID(uuidString: nameOrID) != nil { return nameOrID }
        guard let match = try await allPages(Shapes.User.self, "/users").first(where: { $0.username == nameOrID }) else {
            throw ClientFailure(.notFound, "no user named '\(nameOrID)'")
        }
        return match.id
    }
}

/// What commands print on standard output.
enum Output {
    /// The server's JSON as it came, for `--json`.
    static func json(_ data: Data) {
        let text = String(decoding: data, as: UTF8.self)
        print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
    }

    /// A time as the server sent it (ISO 8601, UTC), shortened to the minute for tables.
    static func time(_ text: String?) -> String {
        guard let text else { return "-" }
        return String(text.replacingOccurrences(of: "T", with: " ").prefix(16))
    }
}
