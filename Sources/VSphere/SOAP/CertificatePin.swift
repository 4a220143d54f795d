import Crypto
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// A SHA-256 certificate thumbprint and the one-off handshake that reads the server's certificate.
struct CertificatePin {
    let bytes: [UInt8]

    /// Accepts `AA:BB:...`, `aabb...` or with spaces.
    init(_ thumbprint: String) throws {
        let hex = thumbprint.filter { $0.isHexDigit }
        guard hex.count == 64, thumbprint.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == " " }) else {
            throw VSphereError.transport(TransportFailure(kind: .certificateMismatch, message: "not a SHA-256 thumbprint: \(thumbprint)"))
        }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        self.bytes = bytes
    }

    static func thumbprint(of certificate: NIOSSLCertificate) throws -> [UInt8] {
        Array(SHA256.hash(data: try certificate.toDERBytes()))
    }

    static func format(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02X", $0) }.joined(separator: ":")
    }

    /// Completes a TLS handshake that accepts any certificate only to read the presented chain
    /// (leaf first); nothing is sent.
    static func fetchCertificateChain(url: URL, timeout: Duration) async throws -> [NIOSSLCertificate] {
        guard let host = url.host else {
            throw VSphereError.invalidResponse("URL without host: \(url)")
        }
        let port = url.port ?? 443
        var configuration = TLSConfiguration.makeClientConfiguration()
        // Verification on, so that NIOSSL calls the callback below, which reads the chain.
        configuration.certificateVerification = .noHostnameVerification
        let context = try NIOSSLContext(configuration: configuration)
        let group = MultiThreadedEventLoopGroup.singleton
        let eventLoop = group.next()
        let received = eventLoop.makePromise(of: [NIOSSLCertificate].self)
        let serverName = host.first?.isNumber == true || host.contains(":") ? nil : host
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(Int64(timeout.nanoseconds)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try NIOSSLClientHandler(context: context, serverHostname: serverName) { certificates, verdict in
                        if !certificates.isEmpty {
                            received.succeed(certificates)
                        }
                        verdict.succeed(.certificateVerified)
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        do {
            let channel = try await bootstrap.connect(host: host, port: port).get()
            defer { channel.close(promise: nil) }
            channel.closeFuture.whenComplete { _ in
                received.fail(VSphereError.transport(TransportFailure(kind: .tls, message: "connection closed during the TLS handshake")))
            }
            let deadline = eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.nanoseconds))) {
                received.fail(VSphereError.transport(TransportFailure(kind: .timedOut, message: "TLS handshake timed out")))
            }
            defer { deadline.cancel() }
            return try await received.futureResult.get()
        } catch let error as VSphereError {
            throw error
        } catch {
            received.fail(error)
            throw VSphereError.transport(HTTPTransport.classify(error))
        }
    }
}
