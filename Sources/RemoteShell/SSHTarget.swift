import NIOCore

/// A host to reach, and the account and credential to use there.
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

    public init(host: String, port: Int = 22, user: String, authentication: SSHAuthentication) {
        self.host = host
        self.port = port
        self.user = user
        self.authentication = authentication
    }

    public var id: ID { ID(host: host, port: port, user: user) }

    /// The host as OpenSSH names it in known_hosts and messages: `host`, or `[host]:port` off port 22.
    public var hostKeyName: String { port == 22 ? host : "[\(host)]:\(port)" }

    public var description: String { "\(user)@\(hostKeyName)" }
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

    public init(connectTimeout: Duration = .seconds(10), handshakeTimeout: Duration = .seconds(30), maxConcurrentChannels: Int = 8) {
        self.connectTimeout = connectTimeout
        self.handshakeTimeout = handshakeTimeout
        self.maxConcurrentChannels = max(1, maxConcurrentChannels)
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

    public init(exitStatus: Int, signal: String? = nil, standardOutput: [UInt8], standardError: [UInt8]) {
        self.exitStatus = exitStatus
        self.signal = signal
        self.standardOutput = standardOutput
        self.standardError = standardError
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
