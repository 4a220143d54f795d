import Logging
import NIOCore
import NIOPosix
import NIOSSH

/// One authenticated SSH connection to a host, on which many commands run as separate session
/// channels. At most `maxConcurrentChannels` are open at once; further commands queue.
public final class SSHConnection: Sendable {
    public let target: SSHTarget
    /// The key the host presented and the target's `HostKeyCheck` accepted.
    public let hostKey: SSHHostKey
    private let channel: any Channel
    private let channelPermits: AsyncSemaphore
    private let outputLimit: Int
    private let logger: Logger

    private init(target: SSHTarget, hostKey: SSHHostKey, channel: any Channel, options: SSHConnectionOptions, logger: Logger) {
        self.target = target
        self.hostKey = hostKey
        self.channel = channel
        self.channelPermits = AsyncSemaphore(limit: options.maxConcurrentChannels)
        self.outputLimit = options.maxOutputBytes
        self.logger = logger
    }

    /// Opens a connection: TCP connect, key exchange with the host key check, authentication.
    ///
    /// Every failure is a `RemoteShellError` whose kind names the stage: `.connect`, `.timeout`,
    /// `.handshake`, `.hostKeyMismatch`, `.hostKeyStore` or `.authentication`.
    public static func connect(
        to target: SSHTarget,
        hostKeyStore: any HostKeyStore,
        options: SSHConnectionOptions = SSHConnectionOptions(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "RemoteShell")
    ) async throws -> SSHConnection {
        let eventLoop = eventLoopGroup.next()
        let authenticated = eventLoop.makePromise(of: Void.self)
        let acceptedHostKey = eventLoop.makePromise(of: SSHHostKey.self)
        // Completing a completed promise does nothing: this only settles it on paths that never reached the check.
        defer { acceptedHostKey.fail(RemoteShellError(.handshake, host: target.hostKeyName, message: "no host key was checked")) }
        let hostKeyName = target.hostKeyName
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(options.connectTimeout))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let configuration = SSHClientConfiguration(
                        userAuthDelegate: CredentialOffer(target: target),
                        serverAuthDelegate: HostKeyVerifier(
                            hostKeyName: hostKeyName, check: target.hostKeyCheck, store: hostKeyStore, accepted: acceptedHostKey,
                            logger: logger)
                    )
                    try channel.pipeline.syncOperations.addHandlers(
                        NIOSSHHandler(role: .client(configuration), allocator: channel.allocator, inboundChildChannelInitializer: nil),
                        ConnectionStageHandler(
                            hostKeyName: hostKeyName, handshakeTimeout: options.handshakeTimeout, authenticated: authenticated)
                    )
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: target.host, port: target.port).get()
        } catch {
            authenticated.fail(error)
            throw connectError(error, target: target, timeout: options.connectTimeout)
        }
        let hostKey: SSHHostKey
        do {
            try await authenticated.futureResult.get()
            hostKey = try await acceptedHostKey.futureResult.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
        logger.debug("connected", metadata: ["target": "\(target)"])
        return SSHConnection(target: target, hostKey: hostKey, channel: channel, options: options, logger: logger)
    }

    /// Whether the connection is still up; a closed connection cannot be used again.
    public var isActive: Bool { channel.isActive }

    /// Runs `command` and returns its output and exit status. A non-zero exit status is a
    /// result, not an error; errors mean the command could not run or finish (`.channel`,
    /// `.timeout`, `.connectionClosed`).
    ///
    /// Cancelling the calling task kills the command (where the server allows) and throws `CancellationError`.
    ///
    /// - Parameters:
    ///   - standardInput: Bytes fed to the command, followed by end-of-file.
    ///   - timeout: After this the command is killed (where the server allows) and `.timeout` thrown.
    public func run(_ command: Command, standardInput: [UInt8] = [], timeout: Duration? = nil) async throws -> CommandResult {
        guard !command.commandLine.utf8.contains(0) else {
            throw RemoteShellError(.invalidArgument, host: target.hostKeyName, message: "a command cannot contain NUL bytes")
        }
        while true {
            try await channelPermits.acquire()
            do {
                let result = try await runOnSessionChannel(command, standardInput: standardInput, timeout: timeout)
                await channelPermits.release()
                return result
            } catch let refusal as ChannelOpenRefusal {
                // The server allows fewer sessions than our cap: use only what it allowed and queue again.
                let openElsewhere = refusal.openChannels - 1
                await channelPermits.release()
                guard openElsewhere > 0 else { throw refusal.error }
                await channelPermits.lowerLimit(to: openElsewhere)
                logger.debug(
                    "server refused a session channel; lowering the channel cap",
                    metadata: ["target": "\(target)", "cap": "\(openElsewhere)"])
            } catch {
                await channelPermits.release()
                throw error
            }
        }
    }

    /// Writes `contents` to `path` on the host, replacing any existing file atomically (written
    /// beside it, then renamed), without SFTP. Parent directories must exist. With a `mode`, the
    /// file is private to the connecting user until that mode is applied, so secrets never sit
    /// readable under a looser umask.
    ///
    /// - Parameters:
    ///   - mode: Permission bits such as `0o644`; without it the remote umask decides for a new file.
    ///   - owner: `user` or `user:group` for chown (needs the right to chown, usually root).
    ///   - timeout: After this the upload is abandoned with `.timeout` (a stalled guest never holds the caller).
    public func upload(
        _ contents: [UInt8], to path: String, mode: Int? = nil, owner: String? = nil, timeout: Duration = .seconds(60)
    ) async throws {
        if let mode, !(0...0o7777).contains(mode) {
            throw RemoteShellError(.invalidArgument, host: target.hostKeyName, message: "file mode \(mode) is out of range 0...0o7777")
        }
        let command = Command.script(
            #"""
            set -e
            temporary="$1.upload.$$"
            if [ -n "$2" ]; then umask 077; fi
            trap 'rm -f -- "$temporary"' EXIT
            cat > "$temporary"
            if [ -n "$3" ]; then chown -- "$3" "$temporary"; fi
            if [ -n "$2" ]; then chmod -- "$2" "$temporary"; fi
            mv -f -- "$temporary" "$1"
            trap - EXIT
            """#,
            arguments: [path, mode.map { String($0, radix: 8) } ?? "", owner ?? ""]
        )
        let result = try await run(command, standardInput: contents, timeout: timeout)
        guard result.succeeded else {
            throw RemoteShellError(
                .remoteCommand, host: target.hostKeyName,
                message: "upload to \(path) failed with exit status \(result.exitStatus): \(result.errorOutput)"
            )
        }
    }

    /// Closes the connection; commands still running on it fail with `.connectionClosed`.
    public func close() async {
        try? await channel.close()
    }

    /// A refused channel open, with how many channels this connection had open at that moment.
    private struct ChannelOpenRefusal: Error {
        var error: RemoteShellError
        var openChannels: Int
    }

    private func runOnSessionChannel(_ command: Command, standardInput: [UInt8], timeout: Duration?) async throws -> CommandResult {
        let hostKeyName = target.hostKeyName
        guard channel.isActive else {
            throw RemoteShellError(.connectionClosed, host: hostKeyName, message: "connection is closed")
        }
        let result = channel.eventLoop.makePromise(of: CommandResult.self)
        let opened = channel.eventLoop.makePromise(of: (any Channel).self)
        let (channel, outputLimit) = (channel, outputLimit)
        channel.eventLoop.execute {
            do {
                let sshHandler = try channel.pipeline.syncOperations.handler(type: NIOSSHHandler.self)
                sshHandler.createChannel(opened, channelType: .session) { child, _ in
                    child.eventLoop.makeCompletedFuture {
                        try child.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                        try child.pipeline.syncOperations.addHandler(
                            ExecHandler(
                                command: command, standardInput: standardInput, timeout: timeout, outputLimit: outputLimit,
                                hostKeyName: hostKeyName, result: result)
                        )
                    }
                }
            } catch {
                opened.fail(error)
            }
        }
        let session: any Channel
        do {
            session = try await opened.futureResult.get()
        } catch {
            result.fail(error)
            guard channel.isActive else {
                throw RemoteShellError(.connectionClosed, host: hostKeyName, message: "connection closed before a session channel opened")
            }
            let refusal = RemoteShellError(.channel, host: hostKeyName, message: "server refused to open a session channel: \(error)")
            if let sshError = error as? NIOSSHError, sshError.type == .channelSetupRejected {
                throw ChannelOpenRefusal(error: refusal, openChannels: await channelPermits.inUseCount)
            }
            throw refusal
        }
        return try await withTaskCancellationHandler {
            try await result.futureResult.get()
        } onCancel: {
            session.pipeline.fireUserInboundEventTriggered(CancelCommandEvent())
        }
    }
}

private func connectError(_ error: any Error, target: SSHTarget, timeout: Duration) -> RemoteShellError {
    if case ChannelError.connectTimeout = error {
        return RemoteShellError(
            .timeout, host: target.hostKeyName, message: "TCP connect did not complete within \(timeout.secondsDescription)")
    }
    guard let error = error as? NIOConnectionError else {
        return RemoteShellError(.connect, host: target.hostKeyName, message: "cannot connect: \(error)")
    }
    if error.connectionErrors.isEmpty {
        let resolverError = error.dnsAError ?? error.dnsAAAAError
        return RemoteShellError(
            .connect, host: target.hostKeyName, message: "cannot resolve \(target.host): \(resolverError.map { "\($0)" } ?? "no addresses")"
        )
    }
    let attempts = error.connectionErrors.map { "\($0.target): \($0.error)" }.joined(separator: "; ")
    return RemoteShellError(.connect, host: target.hostKeyName, message: "cannot connect: \(attempts)")
}
