import Logging
import NIOCore
import NIOSSH

/// Checks the host key as the target's `HostKeyCheck` says, and reports the accepted key
/// through `accepted`. A refused key fails the handshake before any credential is offered.
struct HostKeyVerifier: NIOSSHClientServerAuthenticationDelegate {
    let hostKeyName: String
    let check: HostKeyCheck
    let store: any HostKeyStore
    let accepted: EventLoopPromise<SSHHostKey>
    let logger: Logger

    func validateHostKey(hostKey: NIOSSHPublicKey, validationCompletePromise: EventLoopPromise<Void>) {
        let (hostKeyName, check, store, accepted, logger) = (hostKeyName, check, store, accepted, logger)
        validationCompletePromise.completeWithTask {
            let presented: SSHHostKey
            do {
                presented = try SSHHostKey(hostKey)
                switch check {
                case .pinnedByStore:
                    let pinned = try await store.pinIfAbsent(presented, for: hostKeyName)
                    guard pinned == presented else {
                        throw RemoteShellError(
                            .hostKeyMismatch, host: hostKeyName,
                            message: "host key changed: pinned \(pinned.fingerprint), presented \(presented.fingerprint); "
                                + "refusing to connect (forget the pinned key only if the machine was knowingly re-created)"
                        )
                    }
                case .expected(let expected):
                    guard expected == presented else {
                        throw RemoteShellError(
                            .hostKeyMismatch, host: hostKeyName,
                            message: "host key mismatch: expected \(expected.fingerprint), presented \(presented.fingerprint); "
                                + "refusing to connect, nothing was sent to this host"
                        )
                    }
                case .firstContact:
                    break
                }
            } catch let error as RemoteShellError {
                accepted.fail(error)
                throw RemoteShellError(error.kind, host: hostKeyName, message: error.message)
            } catch {
                let storeError = RemoteShellError(.hostKeyStore, host: hostKeyName, message: "host key store failed: \(error)")
                accepted.fail(storeError)
                throw storeError
            }
            accepted.succeed(presented)
            logger.trace("host key accepted", metadata: ["host": "\(hostKeyName)", "fingerprint": "\(presented.fingerprint)"])
        }
    }
}

/// Offers the one configured credential, and turns a refusal into an `.authentication` error.
///
/// swift-nio-ssh asks again after each refusal; answering `nil` would leave the connection
/// waiting for sshd's LoginGraceTime, so the second request fails the handshake instead.
final class CredentialOffer: NIOSSHClientUserAuthenticationDelegate {
    private let target: SSHTarget
    private var offered = false

    init(target: SSHTarget) {
        self.target = target
    }

    func nextAuthenticationType(
        availableMethods: NIOSSHAvailableUserAuthenticationMethods,
        nextChallengePromise: EventLoopPromise<NIOSSHUserAuthenticationOffer?>
    ) {
        let (method, offer): (NIOSSHAvailableUserAuthenticationMethods, NIOSSHUserAuthenticationOffer.Offer)
        switch target.authentication {
        case .password(let password):
            (method, offer) = (.password, .password(.init(password: password)))
        case .privateKey(let key):
            (method, offer) = (.publicKey, .privateKey(.init(privateKey: key.nioKey)))
        }
        let methodName = method == .password ? "password" : "public key"
        if offered {
            nextChallengePromise.fail(
                RemoteShellError(
                    .authentication, host: target.hostKeyName,
                    message: "server refused \(methodName) authentication for user \(target.user)")
            )
        } else if !availableMethods.contains(method) {
            nextChallengePromise.fail(
                RemoteShellError(
                    .authentication, host: target.hostKeyName,
                    message: "server does not accept \(methodName) authentication for user \(target.user)")
            )
        } else {
            offered = true
            nextChallengePromise.succeed(NIOSSHUserAuthenticationOffer(username: target.user, serviceName: "", offer: offer))
        }
    }
}

/// Watches the connection from TCP establishment to authentication, so that every way it can
/// end reports its stage: it completes `authenticated` on success, and otherwise fails it with
/// the first error seen, a handshake timeout, or the server closing the connection early.
/// Any error closes the connection, so that nothing waits on a peer that has stopped talking.
final class ConnectionStageHandler: ChannelInboundHandler {
    typealias InboundIn = Any

    private let hostKeyName: String
    private let handshakeTimeout: Duration
    private let authenticated: EventLoopPromise<Void>
    private var isAuthenticated = false
    private var firstError: RemoteShellError?
    private var timeoutTask: Scheduled<Void>?

    init(hostKeyName: String, handshakeTimeout: Duration, authenticated: EventLoopPromise<Void>) {
        self.hostKeyName = hostKeyName
        self.handshakeTimeout = handshakeTimeout
        self.authenticated = authenticated
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            startHandshakeTimer(context: context)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        startHandshakeTimer(context: context)
        context.fireChannelActive()
    }

    private func startHandshakeTimer(context: ChannelHandlerContext) {
        guard timeoutTask == nil, !isAuthenticated else { return }
        timeoutTask = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(handshakeTimeout)) {
            self.fail(
                RemoteShellError(
                    .timeout, host: self.hostKeyName,
                    message: "SSH handshake did not complete within \(self.handshakeTimeout.secondsDescription)"),
                context: context
            )
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is UserAuthSuccessEvent {
            isAuthenticated = true
            timeoutTask?.cancel()
            authenticated.succeed(())
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let stageError: RemoteShellError
        if let error = error as? RemoteShellError {
            stageError = error
        } else if isAuthenticated {
            stageError = RemoteShellError(.connectionClosed, host: hostKeyName, message: "connection failed: \(error)")
        } else {
            stageError = RemoteShellError(.handshake, host: hostKeyName, message: "SSH handshake failed: \(error)")
        }
        fail(stageError, context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeoutTask?.cancel()
        authenticated.fail(
            firstError
                ?? RemoteShellError(
                    .handshake, host: hostKeyName,
                    message:
                        "server closed the connection during the SSH handshake (sshd MaxStartups may be dropping concurrent handshakes)"
                )
        )
        context.fireChannelInactive()
    }

    private func fail(_ error: RemoteShellError, context: ChannelHandlerContext) {
        guard firstError == nil else { return }
        firstError = error
        timeoutTask?.cancel()
        authenticated.fail(error)
        context.close(promise: nil)
    }
}
