import Crypto
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// Carries AsyncHTTPClient's plain HTTP, through a private Unix socket, into TLS connections
/// to the vSphere endpoint whose certificate must have the pinned SHA-256 thumbprint — checked
/// on every handshake, whatever issued the certificate. AsyncHTTPClient's TLS settings can only
/// trust roots, which cannot express "exactly this leaf" for a certificate signed by a CA the
/// server does not send (ESXi's installer CA, VMCA).
final class PinnedTLSBridge: Sendable {
    let socketPath: String
    private let server: any Channel

    static func start(host: String, port: Int, pin: [UInt8], connectTimeout: Duration) async throws -> PinnedTLSBridge {
        var configuration = TLSConfiguration.makeClientConfiguration()
        // Peer verification stays on (with `.none` NIOSSL would not even call the callback);
        // the pin check below replaces the chain and host name checks.
        configuration.certificateVerification = .noHostnameVerification
        let context = try NIOSSLContext(configuration: configuration)
        let serverName = host.first?.isNumber == true || host.contains(":") ? nil : host
        let socketPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("vsphere-\(UUID().uuidString.prefix(8)).sock").path
        let timeout = TimeAmount.nanoseconds(connectTimeout.nanoseconds)

        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { inbound in
                ClientBootstrap(group: inbound.eventLoop)
                    .connectTimeout(timeout)
                    .channelInitializer { outbound in
                        outbound.eventLoop.makeCompletedFuture {
                            let tls = try NIOSSLClientHandler(context: context, serverHostname: serverName) { certificates, verdict in
                                let matches = certificates.first.flatMap { try? CertificatePin.thumbprint(of: $0) } == pin
                                verdict.succeed(matches ? .certificateVerified : .failed)
                            }
                            try outbound.pipeline.syncOperations.addHandler(tls)
                        }
                    }
                    .connect(host: host, port: port)
                    .flatMapThrowing { outbound in
                        let (toServer, toClient) = GlueHandler.matchedPair()
                        try inbound.pipeline.syncOperations.addHandler(toServer)
                        try outbound.pipeline.syncOperations.addHandler(toClient)
                    }
            }
            .bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true)
            .get()
        return PinnedTLSBridge(socketPath: socketPath, server: server)
    }

    private init(socketPath: String, server: any Channel) {
        self.socketPath = socketPath
        self.server = server
    }

    func close() async throws {
        try await server.close()
        try? FileManager.default.removeItem(atPath: socketPath)
    }
}

/// Joins two channels on one event loop: what one reads, the other writes; closing one closes
/// both. A side reads only while the other can take more, so a large answer that the HTTP
/// client consumes slowly waits in the network rather than piling up here.
private final class GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var readPending = false

    static func matchedPair() -> (GlueHandler, GlueHandler) {
        let first = GlueHandler()
        let second = GlueHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.context?.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            partner?.resumeReading()
        }
    }

    func read(context: ChannelHandlerContext) {
        if partner?.context?.channel.isWritable ?? false {
            context.read()
        } else {
            readPending = true
        }
    }

    private func resumeReading() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }
}
