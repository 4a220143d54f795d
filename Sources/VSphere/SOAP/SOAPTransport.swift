/// One HTTP exchange of a SOAP call. Kept abstract so that decoding can be tested on recorded
/// responses and so the session logic does not depend on the HTTP stack.
public protocol SOAPTransport: Sendable {
    /// Sends the request and hands the response body to `body` chunk by chunk as it arrives, so
    /// that large answers are parsed while they download instead of being held whole.
    func send(_ request: SOAPHTTPRequest, receiving body: ([UInt8]) throws -> Void) async throws -> SOAPHTTPResponse
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

/// What is left of a response once its body has been handed over.
public struct SOAPHTTPResponse: Sendable {
    public var status: Int
    /// The `vmware_soap_session` value from Set-Cookie, if the server sent one.
    public var sessionCookie: String?

    public init(status: Int, sessionCookie: String? = nil) {
        self.status = status
        self.sessionCookie = sessionCookie
    }
}
