/// What a power request asks for (SPEC VM-4/VM-8).
enum PowerAction: String, Codable, Sendable {
    case on, off, restart

    /// Reads the action of a form or API body; anything else is a validation error.
    init(parsing text: String) throws {
        guard let action = PowerAction(rawValue: text) else {
            throw FlotillaError.validation("action must be on, off or restart")
        }
        self = action
    }
}
