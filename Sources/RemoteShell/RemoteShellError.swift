/// Every failure of RemoteShell, naming the stage that failed and the host it happened on,
/// so that a caller never has to interpret a bare "End of file".
public struct RemoteShellError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The stage or class of failure. A struct rather than an enum so that new kinds can be
    /// added without breaking callers that switch over it (swift-nio style).
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case connect, timeout, handshake, hostKeyMismatch, hostKeyStore, authentication, channel
            case connectionClosed, invalidPrivateKey, invalidArgument, remoteCommand
        }
        private let base: Base

        /// TCP connection could not be established (refused, unreachable, name not resolved).
        public static let connect = Kind(base: .connect)
        /// A connect, handshake or command deadline passed.
        public static let timeout = Kind(base: .timeout)
        /// The SSH protocol exchange failed before authentication (no common algorithms, malformed
        /// data, or the server dropping the connection, as sshd's MaxStartups does under load).
        public static let handshake = Kind(base: .handshake)
        /// The host presented a key other than the one pinned for it.
        public static let hostKeyMismatch = Kind(base: .hostKeyMismatch)
        /// The host key store could not be read or written.
        public static let hostKeyStore = Kind(base: .hostKeyStore)
        /// The server refused every credential offered.
        public static let authentication = Kind(base: .authentication)
        /// The server refused to open a session channel or to execute the command.
        public static let channel = Kind(base: .channel)
        /// The connection ended before the operation completed (network loss, server restart, protocol error).
        public static let connectionClosed = Kind(base: .connectionClosed)
        /// A private key file could not be used (malformed, encrypted, unsupported type).
        public static let invalidPrivateKey = Kind(base: .invalidPrivateKey)
        /// A caller-supplied value cannot be used (for example a file mode out of range).
        public static let invalidArgument = Kind(base: .invalidArgument)
        /// A helper command RemoteShell runs on the caller's behalf (such as an upload) exited unsuccessfully.
        public static let remoteCommand = Kind(base: .remoteCommand)

        public var description: String { base.rawValue }
    }

    public var kind: Kind
    /// The host (and port when not 22) the failure concerns; empty for failures that concern no host.
    public var host: String
    /// A human-readable explanation, including any detail from the underlying error.
    public var message: String

    public init(_ kind: Kind, host: String, message: String) {
        self.kind = kind
        self.host = host
        self.message = message
    }

    public var description: String {
        host.isEmpty ? "\(kind): \(message)" : "\(kind) (\(host)): \(message)"
    }
}
