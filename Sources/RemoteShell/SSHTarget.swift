import NIOCore

/// A host to reach, the account and credential to use there, and which host key to trust.
public struct SSHTarget: Sendable, Identifiable, CustomStringConvertible {
    /// What identifies a connection: one is kept per host, port and user.
    public struct ID: Sendable, Hashable {
        public var host: String
        public var port: Int
        public var user: String
    }

    public var host: String
    public var port: Int
    public var user: String
    public var authentication: SSHAuthentication
    /// How the host's key is checked before any credential is sent.
    public var hostKeyCheck: HostKeyCheck

    public init(host: String, port: Int = 22, user: String, authentication: SSHAuthentication, hostKeyCheck: HostKeyCheck = .pinnedByStore)
    {
        self.host = host
        self.port = port
        self.user = user
        self.authentication = authentication
        self.hostKeyCheck = hostKeyCheck
    }

    public var id: ID { ID(host: host, port: port, user: user) }

    /// The host as OpenSSH names it in known_hosts and messages: `host`, or `[host]:port` off port 22.
    public var hostKeyName: String { port == 22 ? host : "[\(host)]:\(port)" }

    public var description: String { "\(user)@\(hostKeyName)" }
}

/// Which host key a connection accepts. The check runs during key exchange, before
/// authentication: a host that fails it never receives a password or a key signature.
public enum HostKeyCheck: Sendable, Hashable {
    /// Trust on first use, per address: the `HostKeyStore` pins the first key seen under the
    /// target's `hostKeyName` and refuses any other key there afterwards.
    case pinnedByStore
    /// Only this key, wherever the host answers: for callers that pin a key to a machine rather
    /// than to an address (a machine keeps its key when its address changes).
    case expected(SSHHostKey)
    /// Any key, reported as `SSHConnection.hostKey`: first contact with a machine whose key the
    /// caller then pins itself (a new VM, or one rebuilt from its template).
    case firstContact
}

/// The credential offered to the server.
public enum SSHAuthentication: Sendable {
    case password(String)
    case privateKey(SSHPrivateKey)
}

/// Limits and sizes for one SSH connection.
public struct SSHConnectionOptions: Sendable {
    /// How long the TCP connect may take before failing with `.timeout`.
    public var connectTimeout: Duration
    /// How long key exchange and authentication may take after TCP connects; guards against
    /// servers that accept a connection but never finish the handshake (sshd would otherwise
    /// keep us waiting for its LoginGraceTime, 120 s by default).
    public var handshakeTimeout: Duration
    /// Most session channels open at once on the connection; more wait in a queue. sshd refuses
    /// channels beyond its MaxSessions (default 10); if it refuses earlier, the cap is lowered.
    public var maxConcurrentChannels: Int
    /// Most bytes kept of each of a command's standard output and standard error; the rest is
    /// read and discarded (the result says `truncated`), so a guest printing without end cannot
    /// fill this process's memory.
    public var maxOutputBytes: Int

    public init(
        connectTimeout: Duration = .seconds(10), handshakeTimeout: Duration = .seconds(30), maxConcurrentChannels: Int = 8,
        maxOutputBytes: Int = 1 << 20
    ) {
        self.connectTimeout = connectTimeout
        self.handshakeTimeout = handshakeTimeout
        self.maxConcurrentChannels = max(1, maxConcurrentChannels)
        self.maxOutputBytes = max(0, maxOutputBytes)
    }
}

/// What a command printed and how it ended.
public struct CommandResult: Sendable, Hashable {
    /// The exit status; 255 when the command was killed by a signal (as the OpenSSH client reports it).
    public var exitStatus: Int
    /// The signal name (`KILL`, `TERM`, ...) when the command was killed by one.
    public var signal: String?
    public var standardOutput: [UInt8]
    public var standardError: [UInt8]
    /// Whether output beyond `SSHConnectionOptions.maxOutputBytes` was discarded.
    public var truncated: Bool

    public init(exitStatus: Int, signal: String? = nil, standardOutput: [UInt8], standardError: [UInt8], truncated: Bool = false) {
        self.exitStatus = exitStatus
        self.signal = signal
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.truncated = truncated
    }

    public var succeeded: Bool { exitStatus == 0 && signal == nil }
    /// Standard output decoded as UTF-8 (invalid sequences replaced).
    public var output: String { String(decoding: standardOutput, as: UTF8.self) }
    /// Standard error decoded as UTF-8 (invalid sequences replaced).
    public var errorOutput: String { String(decoding: standardError, as: UTF8.self) }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let (nanoseconds, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        self = overflow ? .nanoseconds(.max) : .nanoseconds(nanoseconds + attoseconds / 1_000_000_000)
    }
}

extension Duration {
    var secondsDescription: String {
        let (seconds, attoseconds) = components
        return attoseconds == 0 ? "\(seconds) s" : "\(Double(seconds) + Double(attoseconds) / 1e18) s"
    }
}
