/// Everything the library throws. Server-side refusals (`fault`) and failures to get an answer
/// at all (`transport`) are kept apart: the first is a decision of vSphere, the second a
/// reason to retry or to report vSphere unreachable.
public enum VSphereError: Error, Sendable, CustomStringConvertible {
    /// vSphere refused the call (SOAP fault) or a task ended in error.
    case fault(Fault)
    /// No answer: refused, reset, timed out, or the TLS peer was not the one trusted.
    case transport(TransportFailure)
    /// The answer could not be understood.
    case invalidResponse(String)
    /// A lookup by name or path found nothing.
    case notFound(String)
    /// A task did not finish within the allowed time (it may still finish on the server).
    case taskTimedOut(task: ManagedObjectReference, after: Duration)

    /// The vSphere fault name, if this is a fault.
    public var faultName: FaultName? {
        if case .fault(let fault) = self { return fault.name }
        return nil
    }

    /// Whether `error` is the vSphere fault `name`: the one way to match a fault, e.g.
    /// `catch let error where VSphereError.isFault(error, .managedObjectNotFound)`.
    public static func isFault(_ error: any Error, _ name: FaultName) -> Bool {
        (error as? VSphereError)?.faultName == name
    }

    public var description: String {
        switch self {
        case .fault(let fault): return fault.description
        case .transport(let failure): return failure.description
        case .invalidResponse(let message): return "invalid response from vSphere: \(message)"
        case .notFound(let what): return "not found: \(what)"
        case .taskTimedOut(let task, let after): return "task \(task.value) did not finish within \(after)"
        }
    }
}

/// A vSphere fault: its type name (as vSphere names it) and the server's message. Not an
/// `Error` itself: the library throws it only inside `VSphereError.fault`, so a `catch` of a
/// bare `Fault` cannot be written.
public struct Fault: Sendable, CustomStringConvertible {
    public var name: FaultName
    public var message: String
    /// The fault's detail element, for callers that need its fields (e.g. `InvalidPowerState.existingState`).
    public var detail: SOAPElement?

    public init(name: FaultName, message: String, detail: SOAPElement? = nil) {
        self.name = name
        self.message = message
        self.detail = detail
    }

    public var description: String { message.isEmpty ? name.rawValue : "\(name.rawValue): \(message)" }
}

/// A vSphere fault type name. Open-ended: unknown faults keep the name vSphere sent.
public struct FaultName: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { rawValue }

    public static let invalidLogin: FaultName = "InvalidLogin"
    public static let notAuthenticated: FaultName = "NotAuthenticated"
    public static let invalidPowerState: FaultName = "InvalidPowerState"
    public static let invalidState: FaultName = "InvalidState"
    public static let insufficientResources: FaultName = "InsufficientResourcesFault"
    public static let noDiskSpace: FaultName = "NoDiskSpace"
    public static let duplicateName: FaultName = "DuplicateName"
    public static let managedObjectNotFound: FaultName = "ManagedObjectNotFound"
    public static let invalidArgument: FaultName = "InvalidArgument"
    public static let methodNotFound: FaultName = "MethodNotFound"
    public static let notImplemented: FaultName = "NotImplemented"
    public static let notSupported: FaultName = "NotSupported"
    public static let fileAlreadyExists: FaultName = "FileAlreadyExists"
    public static let toolsUnavailable: FaultName = "ToolsUnavailable"
    public static let invalidProperty: FaultName = "InvalidProperty"
}

/// Why no answer came back.
public struct TransportFailure: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        case connectionRefused
        case connectionClosed
        case timedOut
        /// TLS failed: untrusted certificate, handshake error.
        case tls
        /// The server's certificate does not have the pinned thumbprint.
        case certificateMismatch
        case other
    }

    public var kind: Kind
    public var message: String

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "vSphere unreachable (\(kind)): \(message)" }
}
