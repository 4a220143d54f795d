import Vapor

/// An error a user can act on: its kind decides the HTTP status and the API error code,
/// its message is shown as is (so it never carries secrets or internals).
public struct FlotillaError: Error, AbortError, CustomStringConvertible, Sendable {
    public struct Kind: Hashable, Sendable {
        public let code: String
        public let status: HTTPResponseStatus

        public static let validation = Kind(code: "validation", status: .badRequest)
        public static let unauthenticated = Kind(code: "unauthenticated", status: .unauthorized)
        public static let forbidden = Kind(code: "forbidden", status: .forbidden)
        public static let notFound = Kind(code: "not_found", status: .notFound)
        public static let conflict = Kind(code: "conflict", status: .conflict)
        public static let tooManyAttempts = Kind(code: "too_many_attempts", status: .tooManyRequests)
        public static let csrf = Kind(code: "csrf", status: .forbidden)
        public static let unavailable = Kind(code: "unavailable", status: .serviceUnavailable)
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var status: HTTPResponseStatus { kind.status }
    public var reason: String { message }
    public var description: String { "\(kind.code): \(message)" }

    public static func validation(_ message: String) -> FlotillaError { .init(.validation, message) }
    public static func notFound(_ message: String) -> FlotillaError { .init(.notFound, message) }
    public static func conflict(_ message: String) -> FlotillaError { .init(.conflict, message) }

    /// A person-readable reason for any error: a `FlotillaError`'s message, else the error's own
    /// description (job steps, logs and pages show it).
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as FlotillaError: error.message
        case let error as any CustomStringConvertible: error.description
        default: String(reflecting: error)
        }
    }
}
