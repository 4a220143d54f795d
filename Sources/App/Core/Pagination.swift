import Vapor

/// A validated page request: 1-based page number and a page size from a fixed menu.
public struct PageRequest: Sendable, Equatable {
    public static let sizes = [10, 20, 50, 100]
    public var page: Int
    public var per: Int

    public init(page: Int = 1, per: Int = 10) {
        self.page = page
        self.per = per
    }

    /// Parses `page` and `per` from query values; anything else is a validation error.
    public init(page pageText: String?, per perText: String?) throws {
        page = 1
        per = Self.sizes[0]
        if let pageText, !pageText.isEmpty {
            guard let value = Int(pageText), value >= 1, value <= 1_000_000 else {
                throw FlotillaError.validation("page must be a whole number from 1")
            }
            page = value
        }
        if let perText, !perText.isEmpty {
            guard let value = Int(perText), Self.sizes.contains(value) else {
                throw FlotillaError.validation("per must be one of \(Self.sizes.map(String.init).joined(separator: ", "))")
            }
            per = value
        }
    }

    public var offset: Int { (page - 1) * per }
}

/// One page of results, in the shape every list of the API answers with.
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var total: Int
    public var request: PageRequest

    public var pageCount: Int { max(1, (total + request.per - 1) / request.per) }

    public func map<T>(_ transform: (Item) throws -> T) rethrows -> Page<T> {
        Page<T>(items: try items.map(transform), total: total, request: request)
    }
}

/// The JSON shape of every API list: `{"items":[…],"total":N,"page":P,"per":K}`.
public struct ListResponse<Item: Content>: Content {
    public var items: [Item]
    public var total: Int
    public var page: Int
    public var per: Int

    public init(_ page: Page<Item>) {
        items = page.items
        total = page.total
        self.page = page.request.page
        per = page.request.per
    }
}
