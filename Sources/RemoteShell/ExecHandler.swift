import NIOCore
import NIOSSH

/// Sent down a session channel when the task waiting for its command is cancelled.
struct CancelCommandEvent: Sendable {}

/// Runs one command on a session channel: sends the exec request and the standard input
/// (then end-of-file), collects standard output and standard error up to `outputLimit` bytes
/// each (discarding the rest as it arrives), and the exit status, and completes `result` when
/// the channel closes.
final class ExecHandler: ChannelInboundHandler {
    typealias InboundIn = SSHChannelData
    typealias OutboundOut = SSHChannelData

    private let command: Command
    private let standardInput: [UInt8]
    private let timeout: Duration?
    private let outputLimit: Int
    private let hostKeyName: String
    private let result: EventLoopPromise<CommandResult>

    private var started = false
    private var standardOutput: ByteBuffer
    private var standardError: ByteBuffer
    private var truncated = false
    private var exitStatus: Int?
    private var signal: String?
    private var failure: (any Error)?
    private var timeoutTask: Scheduled<Void>?

    init(
        command: Command, standardInput: [UInt8], timeout: Duration?, outputLimit: Int, hostKeyName: String,
        result: EventLoopPromise<CommandResult>
    ) {
        self.command = command
        self.standardInput = standardInput
        self.timeout = timeout
        self.outputLimit = outputLimit
        self.hostKeyName = hostKeyName
        self.result = result
        self.standardOutput = ByteBuffer()
        self.standardError = ByteBuffer()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            start(context: context)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        if let timeout {
            timeoutTask = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) {
                self.abandon(
                    RemoteShellError(
                        .timeout, host: self.hostKeyName,
                        message: "command did not finish within \(timeout.secondsDescription): \(self.command)"),
                    context: context
                )
            }
        }
        context.triggerUserOutboundEvent(SSHChannelRequestEvent.ExecRequest(command: command.commandLine, wantReply: true), promise: nil)
        if !standardInput.isEmpty {
            let buffer = context.channel.allocator.buffer(bytes: standardInput)
            context.write(wrapOutboundOut(SSHChannelData(type: .channel, data: .byteBuffer(buffer))), promise: nil)
        }
        // End-of-file on standard input, so that commands reading it (cat) finish.
        context.close(mode: .output, promise: nil)
        context.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard case .byteBuffer(let buffer) = message.data else { return }
        if message.type == .channel {
            keep(buffer, in: &standardOutput)
        } else if message.type == .stdErr {
            keep(buffer, in: &standardError)
        }
    }

    /// Appends what still fits under the limit and drops the rest.
    private func keep(_ buffer: ByteBuffer, in collected: inout ByteBuffer) {
        let room = max(0, outputLimit - collected.readableBytes)
        guard buffer.readableBytes > room else {
            collected.writeImmutableBuffer(buffer)
            return
        }
        truncated = true
        if room > 0, let head = buffer.getSlice(at: buffer.readerIndex, length: room) {
            collected.writeImmutableBuffer(head)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let status as SSHChannelRequestEvent.ExitStatus:
            exitStatus = status.exitStatus
        case let exitSignal as SSHChannelRequestEvent.ExitSignal:
            signal = exitSignal.signalName
        case is CancelCommandEvent:
            abandon(CancellationError(), context: context)
        case is ChannelFailureEvent:
            abandon(
                RemoteShellError(.channel, host: hostKeyName, message: "server refused to execute the command: \(command)"),
                context: context)
        default:
            // Includes ChannelEvent.inputClosed: the server's end-of-file precedes the exit status.
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        abandon(RemoteShellError(.channel, host: hostKeyName, message: "session channel failed: \(error)"), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeoutTask?.cancel()
        if let failure {
            result.fail(failure)
        } else if signal != nil || exitStatus != nil {
            result.succeed(
                CommandResult(
                    exitStatus: signal == nil ? exitStatus ?? 255 : 255,
                    signal: signal,
                    standardOutput: Array(standardOutput.readableBytesView),
                    standardError: Array(standardError.readableBytesView),
                    truncated: truncated
                )
            )
        } else {
            result.fail(
                RemoteShellError(
                    .connectionClosed, host: hostKeyName, message: "channel closed before the command reported an exit status: \(command)")
            )
        }
        context.fireChannelInactive()
    }

    /// Gives up on the command: asks the server to kill it (OpenSSH ≥ 7.9 honours this) and closes the channel.
    private func abandon(_ error: any Error, context: ChannelHandlerContext) {
        guard failure == nil else { return }
        failure = error
        timeoutTask?.cancel()
        context.triggerUserOutboundEvent(SSHChannelRequestEvent.SignalRequest(signal: "KILL"), promise: nil)
        context.close(promise: nil)
    }
}
