import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// How the server's TLS certificate is checked. There is no "accept anything".
public enum TrustPolicy: Sendable, Equatable {
    /// The system's trust store and host name verification.
    case system
    /// Exactly one certificate, identified by its SHA-256 thumbprint (hex, colons optional), as
    /// vCenter and ESXi show for their self-signed or installer-signed certificates. Checked on
    /// every TLS connection; host name and issuer are not (the pin is the identity).
    case pinnedSHA256(String)
}

/// SOAP over AsyncHTTPClient: one pooled, keep-alive client per vSphere endpoint.
public final class HTTPTransport: SOAPTransport {
    private let client: HTTPClient
    private let url: String
    /// The endpoint's own host name, sent when requests travel through the bridge's socket.
    private let hostHeader: String?
    private let bridge: PinnedTLSBridge?
    private let logger: Logger
    private let maximumResponseBytes = 512 * 1024 * 1024

    /// Connects lazily; for a pinned certificate, first checks the server's certificate once
    /// (so a mismatch fails here, with a clear error), then routes every connection through a
    /// `PinnedTLSBridge` that checks the pin again on each handshake. A pin with a plain
    /// `http://` URL is refused: there would be no certificate to check.
    public static func make(url: URL, trust: TrustPolicy, connectTimeout: Duration, logger: Logger) async throws -> HTTPTransport {
        let isHTTPS = url.scheme?.lowercased() == "https"
        if case .pinnedSHA256 = trust, !isHTTPS {
            throw VSphereError.transport(
                TransportFailure(
                    kind: .tls, message: "a certificate thumbprint needs an https:// URL; \(url.scheme ?? "this") URLs are not encrypted"))
        }
        guard case .pinnedSHA256(let thumbprint) = trust else {
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration(connectTimeout: connectTimeout))
            return HTTPTransport(client: client, url: url.absoluteString, hostHeader: nil, bridge: nil, logger: logger)
        }
        let expected = try CertificatePin(thumbprint)
        let chain = try await CertificatePin.fetchCertificateChain(url: url, timeout: connectTimeout)
        let actual = try CertificatePin.thumbprint(of: chain[0])
        guard actual == expected.bytes else {
            throw VSphereError.transport(
                TransportFailure(
                    kind: .certificateMismatch,
                    message:
                        "certificate SHA-256 \(CertificatePin.format(actual)) is not the pinned \(CertificatePin.format(expected.bytes))"
                ))
        }
        return try await pinned(url: url, pin: expected.bytes, connectTimeout: connectTimeout, logger: logger)
    }

    /// System trust for direct HTTPS; pooled keep-alive connections.
    private static func clientConfiguration(connectTimeout: Duration) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(tlsConfiguration: TLSConfiguration.makeClientConfiguration())
        configuration.timeout.connect = .nanoseconds(connectTimeout.nanoseconds)
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 16
        configuration.decompression = .disabled
        return configuration
    }

    /// A transport whose every connection goes through a `PinnedTLSBridge` checking `pin`.
    static func pinned(
        url: URL,
        pin: [UInt8],
        connectTimeout: Duration,
        logger: Logger = Logger(label: "vsphere")
    ) async throws -> HTTPTransport {
        guard let host = url.host else { throw VSphereError.invalidResponse("URL without host: \(url)") }
        let bridge = try await PinnedTLSBridge.start(host: host, port: url.port ?? 443, pin: pin, connectTimeout: connectTimeout)
        guard let bridged = URL(httpURLWithSocketPath: bridge.socketPath, uri: url.path.isEmpty ? "/sdk" : url.path) else {
            try? await bridge.close()
            throw VSphereError.invalidResponse("cannot route \(url) through \(bridge.socketPath)")
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration(connectTimeout: connectTimeout))
        let hostHeader = url.port.map { "\(host):\($0)" } ?? host
        return HTTPTransport(client: client, url: bridged.absoluteString, hostHeader: hostHeader, bridge: bridge, logger: logger)
    }

    private init(client: HTTPClient, url: String, hostHeader: String?, bridge: PinnedTLSBridge?, logger: Logger) {
        self.client = client
        self.url = url
        self.hostHeader = hostHeader
        self.bridge = bridge
        self.logger = logger
    }

    public func send(_ request: SOAPHTTPRequest, receiving body: ([UInt8]) throws -> Void) async throws -> SOAPHTTPResponse {
        var http = HTTPClientRequest(url: url)
        http.method = .POST
        if let hostHeader {
            http.headers.add(name: "Host", value: hostHeader)
        }
        http.headers.add(name: "Content-Type", value: "text/xml; charset=utf-8")
        http.headers.add(name: "SOAPAction", value: "\"\(request.soapAction)\"")
        if let cookie = request.sessionCookie {
            http.headers.add(name: "Cookie", value: "vmware_soap_session=\(cookie)")
        }
        http.body = .bytes(ByteBuffer(string: request.body))
        let timeout = TimeAmount.nanoseconds(request.timeout.nanoseconds)
        do {
            let response = try await client.execute(http, timeout: timeout, logger: logger)
            // Whatever answers a non-SOAP page (a proxy, or any host at all when a connection is
            // tested) is described by status and type only: its body is never read or repeated.
            let contentType = response.headers.first(name: "Content-Type") ?? ""
            guard Self.isXML(contentType: contentType) else {
                throw VSphereError.invalidResponse(
                    "HTTP \(response.status.code) answer of type \(contentType.isEmpty ? "(none)" : contentType.prefix(80)) is not SOAP XML"
                )
            }
            var total = 0
            for try await chunk in response.body {
                total += chunk.readableBytes
                guard total <= maximumResponseBytes else {
                    throw VSphereError.invalidResponse("response larger than \(maximumResponseBytes) bytes")
                }
                try body(Array(chunk.readableBytesView))
            }
            return SOAPHTTPResponse(status: Int(response.status.code), sessionCookie: Self.sessionCookie(in: response.headers))
        } catch let error as VSphereError {
            throw error
        } catch let error as XMLDocumentParser.Failure {
            throw error
        } catch {
            throw VSphereError.transport(Self.classify(error))
        }
    }

    public func shutdown() async throws {
        try await client.shutdown()
        try await bridge?.close()
    }

    /// vSphere answers `text/xml`; SOAP 1.2 stacks and some proxies say `application/soap+xml` or `application/xml`.
    static func isXML(contentType: String) -> Bool {
        let mediaType = contentType.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        return ["text/xml", "application/xml", "application/soap+xml"].contains(mediaType)
    }

    static func sessionCookie(in headers: HTTPHeaders) -> String? {
        for header in headers[canonicalForm: "set-cookie"] {
            let pair = header.split(separator: ";", maxSplits: 1).first ?? header
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == "vmware_soap_session" {
                return String(parts[1])
            }
        }
        return nil
    }

    /// Maps the HTTP stack's errors onto the few cases callers act on.
    static func classify(_ error: any Error) -> TransportFailure {
        let text = String(describing: error)
        if let client = error as? HTTPClientError {
            switch client {
            case .deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout:
                return TransportFailure(kind: .timedOut, message: text)
            case .remoteConnectionClosed, .cancelled:
                return TransportFailure(kind: .connectionClosed, message: text)
            default:
                break
            }
        }
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            return TransportFailure(kind: .tls, message: text)
        }
        if let io = error as? IOError {
            switch io.errnoCode {
            case ECONNREFUSED: return TransportFailure(kind: .connectionRefused, message: text)
            case ECONNRESET, EPIPE: return TransportFailure(kind: .connectionClosed, message: text)
            case ETIMEDOUT: return TransportFailure(kind: .timedOut, message: text)
            default: break
            }
        }
        if error is ChannelError {
            return TransportFailure(kind: .connectionClosed, message: text)
        }
        let lowered = text.lowercased()
        if lowered.contains("refused") { return TransportFailure(kind: .connectionRefused, message: text) }
        if lowered.contains("timeout") || lowered.contains("timed out") { return TransportFailure(kind: .timedOut, message: text) }
        if lowered.contains("certificate") || lowered.contains("ssl") { return TransportFailure(kind: .tls, message: text) }
        return TransportFailure(kind: .other, message: text)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
