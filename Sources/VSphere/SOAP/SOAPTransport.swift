/// One HTTP exchange of a SOAP call. Kept abstract so that decoding can be tested on recorded
/// responses and so the session logic does not depend on the HTTP stack.
public protocol SOAPTransport: Sendable {
    func send(_ request: SOAPHTTPRequest) async throws -> SOAPHTTPResponse
    /// Releases connections; the transport is unusable afterwards.
    func shutdown() async throws
}

public struct SOAPHTTPRequest: Sendable {
    public var body: String
    /// `urn:vim25/<apiVersion>`, sent (quoted) as the SOAPAction header.
    public var soapAction: String
    /// The `vmware_soap_session` cookie value, once logged in.
    public var sessionCookie: String?
    public var timeout: Duration
}

public struct SOAPHTTPResponse: Sendable {
    public var status: Int
    public var body: [UInt8]
    /// The `vmware_soap_session` value from Set-Cookie, if the server sent one.
    public var sessionCookie: String?

    public init(status: Int, body: [UInt8], sessionCookie: String? = nil) {
        self.status = status
        self.body = body
        self.sessionCookie = sessionCookie
    }
}
