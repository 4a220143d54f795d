import Vapor

extension Request {
    /// The route's `:id` as a UUID; anything else is "no such `what`" (404), as an unknown id is.
    func uuidParameter(_ what: String, name: String = "id") throws -> UUID {
        guard let id = parameters.get(name, as: UUID.self) else { throw FlotillaError.notFound("no such \(what)") }
        return id
    }
}
