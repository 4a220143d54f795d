import Logging
import NIOConcurrencyHelpers

/// The generic call path every typed wrapper goes through: encode the operation, send it with
/// the session cookie, decode the response or the fault. When the server says
/// `NotAuthenticated` (session expired or dropped), it logs in again once and retries.
public final class SOAPConnection: Sendable {
    public let transport: any SOAPTransport
    /// `urn:vim25/<apiVersion>`, the SOAPAction of every call.
    public let soapAction: String
    public let timeout: Duration
    let logger: Logger

    private struct State {
        var cookie: String?
        var relogin: (@Sendable (SOAPConnection) async throws -> Void)?
        /// The login under way after the session `cookie` expired; concurrent callers share it.
        var renewal: (expiredCookie: String?, task: Task<Void, any Error>)?
    }
    private let state = NIOLockedValueBox(State())

    public init(transport: any SOAPTransport, apiVersion: String, timeout: Duration, logger: Logger = Logger(label: "vsphere")) {
        self.transport = transport
        self.soapAction = "urn:vim25/\(apiVersion)"
        self.timeout = timeout
        self.logger = logger
    }

    /// The current session cookie (nil before login).
    public var sessionCookie: String? { state.withLockedValue { $0.cookie } }

    /// Sets how to log in again after `NotAuthenticated`; nil disables re-login.
    func setRelogin(_ relogin: (@Sendable (SOAPConnection) async throws -> Void)?) {
        state.withLockedValue { $0.relogin = relogin }
    }

    func clearSession() {
        state.withLockedValue { $0.cookie = nil }
    }

    /// Invokes an operation and returns its `<MethodResponse>` element.
    public func invoke(_ operation: SOAPOperation) async throws -> SOAPElement {
        try await invoke(operation, streaming: nil) { _ in }
    }

    /// Invokes an operation; the response's elements at `path` below `<MethodResponse>`
    /// (e.g. `["returnval"]`) go to `handler` one by one as they are parsed, and are left out
    /// of the returned element. For answers too large to hold as one tree.
    public func invoke(
        _ operation: SOAPOperation,
        streaming path: [String]?,
        to handler: (SOAPElement) throws -> Void
    ) async throws -> SOAPElement {
        let usedCookie = sessionCookie
        do {
            return try await invokeOnce(operation, streaming: path, to: handler)
        } catch VSphereError.fault(let fault) where fault.name == .notAuthenticated {
            try await renewSession(expired: usedCookie, fault: fault, method: operation.method)
            return try await invokeOnce(operation, streaming: path, to: handler)
        }
    }

    /// Logs in again once per expired session, however many calls noticed it at the same time.
    private func renewSession(expired: String?, fault: Fault, method: String) async throws {
        let renewal: Task<Void, any Error>? = try state.withLockedValue { state in
            if let renewal = state.renewal, renewal.expiredCookie == expired { return renewal.task }
            if state.cookie != expired { return nil }  // already renewed by another call
            guard let relogin = state.relogin else { throw VSphereError.fault(fault) }
            state.cookie = nil
            let task = Task { try await relogin(self) }
            state.renewal = (expired, task)
            return task
        }
        guard let renewal else { return }
        logger.info("vSphere session no longer valid; logging in again", metadata: ["method": "\(method)"])
        // Once finished, later expiries start a new login; callers still holding the old cookie
        // then see the new one and just retry.
        defer {
            state.withLockedValue { state in
                if state.renewal?.task == renewal { state.renewal = nil }
            }
        }
        try await renewal.value
    }

    /// Invokes an operation and returns the `returnval` children of its response.
    public func invokeReturning(_ operation: SOAPOperation) async throws -> [SOAPElement] {
        try await invoke(operation).children("returnval")
    }

    /// One attempt, without re-login.
    func invokeOnce(
        _ operation: SOAPOperation,
        streaming path: [String]? = nil,
        to handler: (SOAPElement) throws -> Void = { _ in }
    ) async throws -> SOAPElement {
        let request = SOAPHTTPRequest(
            body: operation.envelope(),
            soapAction: soapAction,
            sessionCookie: sessionCookie,
            timeout: timeout
        )
        var parser = ResponseParser(method: operation.method, streaming: path)
        let response: SOAPHTTPResponse
        do {
            response = try await transport.send(request) { chunk in try parser.feed(chunk, to: handler) }
        } catch let failure as XMLDocumentParser.Failure {
            throw parser.notXML(failure, status: nil)
        }
        if let cookie = response.sessionCookie {
            state.withLockedValue { $0.cookie = cookie }
        }
        return try parser.finish(status: response.status, to: handler)
    }

    /// Decodes a complete recorded response (tests, diagnostics).
    static func decode(status: Int, body: [UInt8], method: String) throws -> SOAPElement {
        var parser = ResponseParser(method: method, streaming: nil)
        do {
            try parser.feed(body) { _ in }
        } catch let failure as XMLDocumentParser.Failure {
            throw parser.notXML(failure, status: status)
        }
        return try parser.finish(status: status) { _ in }
    }

    /// Parses a response as it arrives, then finds the method's response in it or turns a SOAP
    /// fault into `VSphereError.fault`.
    struct ResponseParser {
        let method: String
        private var parser: XMLDocumentParser

        init(method: String, streaming path: [String]?) {
            self.method = method
            parser = XMLDocumentParser(streaming: path.map { ["Envelope", "Body", method + "Response"] + $0 })
        }

        mutating func feed(_ chunk: [UInt8], to handler: (SOAPElement) throws -> Void) throws {
            try parser.feed(chunk, to: handler)
        }

        /// Says where the XML broke, never what it said: the answer may come from any host.
        func notXML(_ failure: XMLDocumentParser.Failure, status: Int?) -> VSphereError {
            .invalidResponse("\(status.map { "HTTP \($0) " } ?? "")answer to \(method) is not well-formed XML (at byte \(failure.offset))")
        }

        mutating func finish(status: Int, to handler: (SOAPElement) throws -> Void) throws -> SOAPElement {
            let envelope: SOAPElement
            do {
                envelope = try parser.finish(to: handler)
            } catch let failure as XMLDocumentParser.Failure {
                throw notXML(failure, status: status)
            }
            guard envelope.name == QualifiedName(namespace: XMLNamespace.soapEnvelope, name: "Envelope"),
                let body = envelope.children.first(where: { $0.name == QualifiedName(namespace: XMLNamespace.soapEnvelope, name: "Body") })
            else {
                throw VSphereError.invalidResponse("HTTP \(status) for \(method): not a SOAP envelope")
            }
            if let fault = body.children.first(where: { $0.name == QualifiedName(namespace: XMLNamespace.soapEnvelope, name: "Fault") }) {
                throw VSphereError.fault(SOAPConnection.decodeFault(fault))
            }
            guard status == 200 else {
                throw VSphereError.invalidResponse("HTTP \(status) for \(method) without a SOAP fault")
            }
            guard let result = body.children.first(where: { $0.localName == method + "Response" }) else {
                throw VSphereError.invalidResponse("no \(method)Response in the answer")
            }
            return result
        }
    }

    /// `soapenv:Fault` → name from `detail/*` (its xsi:type, else its element name without the
    /// `Fault` suffix vim25 adds), message from `faultstring`.
    static func decodeFault(_ fault: SOAPElement) -> Fault {
        let message = fault.child("faultstring")?.text ?? ""
        guard let detail = fault.child("detail")?.children.first else {
            let code = fault.child("faultcode")?.text ?? "SOAPFault"
            return Fault(name: FaultName(rawValue: code), message: message)
        }
        let name =
            detail.schemaType?.name
            ?? String(detail.localName.hasSuffix("Fault") ? detail.localName.dropLast(5) : Substring(detail.localName))
        return Fault(name: FaultName(rawValue: name), message: message, detail: detail)
    }

    /// A task's `info.error` (LocalizedMethodFault) → fault.
    static func decodeLocalizedFault(_ error: SOAPElement) -> Fault {
        let message = error.child("localizedMessage")?.text ?? ""
        guard let fault = error.child("fault") else { return Fault(name: "UnknownFault", message: message) }
        let name = fault.schemaType?.name ?? "UnknownFault"
        let faultMessage = fault.descendant("faultMessage", "message")?.text
        return Fault(name: FaultName(rawValue: name), message: message.isEmpty ? (faultMessage ?? "") : message, detail: fault)
    }
}
