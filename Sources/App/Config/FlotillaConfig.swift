import Foundation
import Mail

/// The one validated configuration Flotilla reads at start.
///
/// Values come from an optional config file (`KEY=value` lines, the same names as the
/// environment variables) overlaid by the process environment. A bad value stops the
/// server with a message naming the setting.
public struct FlotillaConfig: Sendable {
    public enum Database: Sendable, Equatable {
        case sqlite(path: String)
        case postgres(url: String)
    }

    public struct SMTP: Sendable {
        public var host: String
        public var port: Int
        public var username: String?
        public var password: String?
        public var from: EmailAddress
        public var security: SMTPSecurity
        /// PEM file of the CAs the server's certificate must chain to; nil trusts the system's roots.
        public var certificateAuthorityFile: String?
    }

    public var listenHost: String
    public var listenPort: Int
    /// `FLOTILLA_ADVERTISE_ADDRESS`: how other people and proxies reach this instance; nil means
    /// this machine's host name with the listen port.
    public var advertisedAddress: String?
    public var dataDirectory: String
    public var secretKeyFile: String { dataDirectory + "/secret.key" }
    public var database: Database
    public var backupDirectory: String
    /// How many log backups are kept; each new backup deletes older ones beyond this.
    public var backupKeep: Int
    public static let defaultBackupKeep = 30
    public var displayTimeZone: TimeZone
    /// `nil` lets the server decide per request: Secure when the request arrived over HTTPS.
    public var secureCookies: Bool?
    public var sessionLifetimeHours: Int
    public var trustedProxies: [CIDR]
    public var smtp: SMTP?
    public var initialAdminPassword: String?
    public var passwordMinimumLength: Int
    public var loginFailureLimit: Int
    public var loginLockoutSeconds: Int
    public var secretKey: String?
    public var jobConcurrency: Int
    public var guestBootTimeoutSeconds: Int
    public var inventorySyncSeconds: Int
    /// Seconds between reachability sweeps of every managed VM (SPEC DASH-1); 0 turns them off.
    public var reachabilitySeconds: Int
    /// How long a sweep waits for an echo reply, and separately for a TCP connect, at most.
    public var reachabilityTimeoutMilliseconds: Int
    /// The shortest wait: between it and the timeout each VM's wait follows its measured round trips.
    public var reachabilityMinimumTimeoutMilliseconds: Int
    /// Extra echo requests within a sweep to addresses still silent.
    public var reachabilityRetries: Int
    /// Silent sweeps in a row after which a VM counts as unreachable.
    public var reachabilityDownAfter: Int
    /// The TCP port connected to when ICMP gets no answer (sshd: every managed guest runs it).
    public var reachabilityPort: Int
    /// How often CPU and memory are read from vSphere (0: never; the series keep their gaps).
    public var metricsCollectSeconds: Int
    /// Bearer token that `/metrics` (Prometheus) requires; nil: no `/metrics` at all.
    public var metricsToken: String?
    /// Seconds without a new commit before a burst of upgrade hooks becomes one rollout (issue 12 §6).
    public var upgradeQuietSeconds: Int
    public var jobConcurrencyPerConnection: Int
    /// `FLOTILLA_AGENT_URL`: where monitor agents report to, as the guests reach this platform;
    /// nil: new and adopted VMs get no agent (SPEC MON-1).
    public var agentPlatformURL: String?
    /// `FLOTILLA_RESOURCES_DIR`; nil lets `ResourceDirectory.find` look next to the program.
    public var resourcesDirectory: String?
    /// bcrypt work factor. Not a setting: only tests lower it, to keep the suite fast.
    public var passwordHashCost = 12
    /// How long an SQLite connection waits for another's write lock before its statement fails.
    /// Not a setting: only tests lower it, to see a busy database in seconds.
    public var sqliteBusyTimeoutMilliseconds = 5000
    /// How long a statement waits for its event loop's SQLite connection before it fails (a
    /// 503). Not a setting: only tests lower it.
    public var databaseConnectionWaitMilliseconds = 10_000

    /// Every setting the configuration understands, with its meaning (used for errors and docs).
    public static let settings: [(name: String, meaning: String)] = [
        ("FLOTILLA_CONFIG", "path of an optional config file of KEY=value lines"),
        ("FLOTILLA_HOST", "listen address (default 127.0.0.1)"),
        ("FLOTILLA_PORT", "listen port (default 8080)"),
        ("FLOTILLA_ADVERTISE_ADDRESS", "host:port shown for this instance on the Instances page (default <hostname>:<port>)"),
        ("FLOTILLA_DATA_DIR", "data directory (default ./data, created if missing)"),
        (
            "FLOTILLA_RESOURCES_DIR",
            "folder with Resources/Views and Public (default: <bin>/../share/flotilla, <bin>, or the source checkout)"
        ),
        ("FLOTILLA_DATABASE_URL", "postgres://user:pass@host:port/db, or sqlite:///path (default <data>/flotilla.sqlite)"),
        ("FLOTILLA_BACKUP_DIR", "where log backups are written (default <data>/backups)"),
        ("FLOTILLA_BACKUP_KEEP", "how many log backups are kept; older ones are deleted after each backup (default 30)"),
        ("FLOTILLA_TIMEZONE", "time zone for display, e.g. Asia/Shanghai (default UTC); times are stored in UTC"),
        ("FLOTILLA_COOKIE_SECURE", "true, false or auto (default auto: Secure when the request came over HTTPS)"),
        ("FLOTILLA_SESSION_HOURS", "session lifetime in hours (default 12)"),
        ("FLOTILLA_TRUSTED_PROXIES", "comma-separated CIDRs whose X-Forwarded-For is honoured (default none)"),
        ("FLOTILLA_SMTP_HOST", "SMTP server for notifications (optional)"),
        ("FLOTILLA_SMTP_PORT", "SMTP port (default 587, or 465 with tls)"),
        ("FLOTILLA_SMTP_USER", "SMTP user name (optional)"),
        ("FLOTILLA_SMTP_PASSWORD", "SMTP password (optional)"),
        ("FLOTILLA_SMTP_FROM", "sender address (default flotilla@<host>)"),
        ("FLOTILLA_SMTP_SECURITY", "none, starttls or tls (default starttls)"),
        ("FLOTILLA_SMTP_CA_FILE", "PEM file of the CAs the SMTP server's certificate must chain to (default: the system's roots)"),
        ("FLOTILLA_ADMIN_PASSWORD", "password of the first system administrator `admin` (default: generated and printed once)"),
        ("FLOTILLA_PASSWORD_MIN_LENGTH", "minimum password length (default 8)"),
        (
            "FLOTILLA_LOGIN_MAX_FAILURES",
            "failed sign-ins per (user name, IP) before a lockout; 3× this over all names locks the IP (default 5)"
        ),
        ("FLOTILLA_LOGIN_LOCKOUT_SECONDS", "lockout length in seconds (default 60)"),
        ("FLOTILLA_SECRET_KEY", "base64 of 32 bytes sealing stored passwords (default: <data>/secret.key, created 0600)"),
        ("FLOTILLA_GUEST_BOOT_SECONDS", "how long a new VM's guest may take to report its address (default 300)"),
        ("FLOTILLA_SYNC_SECONDS", "how often VMs are compared with vSphere (default 15; 0 turns it off)"),
        ("FLOTILLA_REACHABILITY_SECONDS", "seconds between reachability sweeps of every VM, 1 to 60 (default 1; 0 turns them off)"),
        ("FLOTILLA_REACHABILITY_TIMEOUT_MS", "how long a sweep waits for each answer; twice it fits in the interval (default 400)"),
        (
            "FLOTILLA_REACHABILITY_MIN_TIMEOUT_MS",
            "shortest wait; each VM waits 4x its round-trip variation above its usual round trip, within this and the timeout (default 100)"
        ),
        ("FLOTILLA_REACHABILITY_RETRIES", "extra echo requests per sweep to silent VMs, 0 to 10 (default 0)"),
        ("FLOTILLA_REACHABILITY_DOWN_AFTER", "silent sweeps in a row before a VM is unreachable, 1 to 100 (default 3)"),
        ("FLOTILLA_REACHABILITY_PORT", "TCP port tried when ICMP gets no answer (default 22)"),
        ("FLOTILLA_METRICS_SECONDS", "how often VMs' CPU and memory are collected (default 20; 0 turns it off)"),
        ("FLOTILLA_UPGRADE_QUIET_SECONDS", "seconds without a new commit before hooked commits become one auto-upgrade (default 30)"),
        ("FLOTILLA_METRICS_TOKEN", "bearer token for the Prometheus endpoint /metrics (default: no /metrics)"),
        ("FLOTILLA_JOB_CONCURRENCY", "steps of jobs this instance runs at once (default 32)"),
        ("FLOTILLA_JOB_CONCURRENCY_PER_CONNECTION", "steps running at once on one vSphere connection, all instances together (default 16)"),
        (
            "FLOTILLA_AGENT_URL",
            "http(s) URL of this platform as the guests reach it; set: every created or adopted VM gets the monitor agent (default unset)"
        ),
    ]

    /// Reads the configuration from the environment and the optional config file it names.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> FlotillaConfig {
        var values: [String: String] = [:]
        if let file = environment["FLOTILLA_CONFIG"], !file.isEmpty {
            values = try readConfigFile(at: file)
        }
        for (key, value) in environment where key.hasPrefix("FLOTILLA_") {
            values[key] = value
        }
        return try FlotillaConfig(values: values)
    }

    /// Builds a configuration from already collected `FLOTILLA_*` values.
    public init(values: [String: String]) throws {
        let known = Set(Self.settings.map(\.name))
        if let unknown = values.keys.sorted().first(where: { !known.contains($0) }) {
            throw ConfigError(setting: unknown, problem: "is not a known setting")
        }
        var reader = SettingReader(values: values)
        listenHost = try reader.string("FLOTILLA_HOST", default: "127.0.0.1")
        listenPort = try reader.integer("FLOTILLA_PORT", default: 8080, range: 1...65535)
        advertisedAddress = try reader.optional("FLOTILLA_ADVERTISE_ADDRESS")
        dataDirectory = try reader.string("FLOTILLA_DATA_DIR", default: "./data")
        resourcesDirectory = try reader.optional("FLOTILLA_RESOURCES_DIR")
        database = try Self.parseDatabase(reader.optional("FLOTILLA_DATABASE_URL"), dataDirectory: dataDirectory)
        backupDirectory = try reader.string("FLOTILLA_BACKUP_DIR", default: dataDirectory + "/backups")
        backupKeep = try reader.integer("FLOTILLA_BACKUP_KEEP", default: Self.defaultBackupKeep, range: 1...100_000)
        let zoneName = try reader.string("FLOTILLA_TIMEZONE", default: "UTC")
        guard let zone = TimeZone(identifier: zoneName) else {
            throw ConfigError(setting: "FLOTILLA_TIMEZONE", problem: "'\(zoneName)' is not a known time zone")
        }
        displayTimeZone = zone
        switch try reader.string("FLOTILLA_COOKIE_SECURE", default: "auto").lowercased() {
        case "auto": secureCookies = nil
        case "true", "yes", "1": secureCookies = true
        case "false", "no", "0": secureCookies = false
        case let other: throw ConfigError(setting: "FLOTILLA_COOKIE_SECURE", problem: "'\(other)' is not true, false or auto")
        }
        sessionLifetimeHours = try reader.integer("FLOTILLA_SESSION_HOURS", default: 12, range: 1...24 * 90)
        trustedProxies =
            try reader.optional("FLOTILLA_TRUSTED_PROXIES").map { list in
                try list.split(separator: ",").map { item in
                    let text = item.trimmingCharacters(in: .whitespaces)
                    guard let cidr = CIDR(text) else {
                        throw ConfigError(setting: "FLOTILLA_TRUSTED_PROXIES", problem: "'\(text)' is not an IPv4 or IPv6 CIDR")
                    }
                    return cidr
                }
            } ?? []
        smtp = try Self.parseSMTP(&reader)
        initialAdminPassword = try reader.optional("FLOTILLA_ADMIN_PASSWORD")
        passwordMinimumLength = try reader.integer("FLOTILLA_PASSWORD_MIN_LENGTH", default: 8, range: 4...128)
        loginFailureLimit = try reader.integer("FLOTILLA_LOGIN_MAX_FAILURES", default: 5, range: 1...1000)
        loginLockoutSeconds = try reader.integer("FLOTILLA_LOGIN_LOCKOUT_SECONDS", default: 60, range: 1...86400)
        secretKey = try reader.optional("FLOTILLA_SECRET_KEY")
        inventorySyncSeconds = try reader.integer("FLOTILLA_SYNC_SECONDS", default: 15, range: 0...86400)
        reachabilitySeconds = try reader.integer("FLOTILLA_REACHABILITY_SECONDS", default: 1, range: 0...60)
        reachabilityTimeoutMilliseconds = try reader.integer("FLOTILLA_REACHABILITY_TIMEOUT_MS", default: 400, range: 10...29_999)
        // A silent VM costs the echo timeout and then the TCP connect's: both fit in one interval.
        if reachabilitySeconds > 0, reachabilityTimeoutMilliseconds * 2 >= reachabilitySeconds * 1000 {
            throw ConfigError(
                setting: "FLOTILLA_REACHABILITY_TIMEOUT_MS", problem: "must be less than half of FLOTILLA_REACHABILITY_SECONDS")
        }
        reachabilityMinimumTimeoutMilliseconds = try reader.integer(
            "FLOTILLA_REACHABILITY_MIN_TIMEOUT_MS", default: min(100, reachabilityTimeoutMilliseconds),
            range: 1...reachabilityTimeoutMilliseconds)
        reachabilityRetries = try reader.integer("FLOTILLA_REACHABILITY_RETRIES", default: 0, range: 0...10)
        reachabilityDownAfter = try reader.integer("FLOTILLA_REACHABILITY_DOWN_AFTER", default: 3, range: 1...100)
        reachabilityPort = try reader.integer("FLOTILLA_REACHABILITY_PORT", default: 22, range: 1...65535)
        metricsCollectSeconds = try reader.integer("FLOTILLA_METRICS_SECONDS", default: 20, range: 0...3600)
        metricsToken = try reader.optional("FLOTILLA_METRICS_TOKEN")
        upgradeQuietSeconds = try reader.integer("FLOTILLA_UPGRADE_QUIET_SECONDS", default: 30, range: 1...3600)
        if let token = metricsToken, token.count < 16 {
            throw ConfigError(setting: "FLOTILLA_METRICS_TOKEN", problem: "must be at least 16 characters (it guards /metrics)")
        }
        guestBootTimeoutSeconds = try reader.integer("FLOTILLA_GUEST_BOOT_SECONDS", default: 300, range: 1...3600)
        jobConcurrency = try reader.integer("FLOTILLA_JOB_CONCURRENCY", default: 32, range: 1...1000)
        jobConcurrencyPerConnection = try reader.integer("FLOTILLA_JOB_CONCURRENCY_PER_CONNECTION", default: 16, range: 1...1000)
        agentPlatformURL = try reader.optional("FLOTILLA_AGENT_URL").map { text in
            do {
                return try AgentCredentials.validatePlatformURL(text)
            } catch {
                throw ConfigError(setting: "FLOTILLA_AGENT_URL", problem: "'\(text.prefix(100))' is not an http(s) URL with a host")
            }
        }
        if let password = initialAdminPassword, password.count < passwordMinimumLength {
            throw ConfigError(
                setting: "FLOTILLA_ADMIN_PASSWORD",
                problem: "is shorter than FLOTILLA_PASSWORD_MIN_LENGTH (\(passwordMinimumLength))")
        }
    }

    private static func parseDatabase(_ url: String?, dataDirectory: String) throws -> Database {
        guard let url, !url.isEmpty else {
            return .sqlite(path: dataDirectory + "/flotilla.sqlite")
        }
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            guard let parsed = URL(string: url), parsed.host != nil, !parsed.path.isEmpty, parsed.path != "/" else {
                throw ConfigError(setting: "FLOTILLA_DATABASE_URL", problem: "must look like postgres://user:password@host:port/database")
            }
            return .postgres(url: url)
        }
        if url.hasPrefix("sqlite://") {
            let path = String(url.dropFirst("sqlite://".count))
            guard !path.isEmpty else {
                throw ConfigError(
                    setting: "FLOTILLA_DATABASE_URL", problem: "sqlite:// needs a file path, e.g. sqlite:///var/lib/flotilla/db.sqlite")
            }
            return .sqlite(path: path)
        }
        throw ConfigError(setting: "FLOTILLA_DATABASE_URL", problem: "must start with postgres:// or sqlite://")
    }

    private static func parseSMTP(_ reader: inout SettingReader) throws -> SMTP? {
        guard let host = try reader.optional("FLOTILLA_SMTP_HOST") else { return nil }
        let securityText = try reader.string("FLOTILLA_SMTP_SECURITY", default: "starttls").lowercased()
        guard let security = SMTPSecurity(rawValue: securityText) else {
            throw ConfigError(setting: "FLOTILLA_SMTP_SECURITY", problem: "'\(securityText)' is not none, starttls or tls")
        }
        let port = try reader.integer("FLOTILLA_SMTP_PORT", default: security == .tls ? 465 : 587, range: 1...65535)
        let fromText = try reader.string("FLOTILLA_SMTP_FROM", default: "flotilla@\(host)")
        let from: EmailAddress
        do {
            from = try EmailAddress(fromText, displayName: "Flotilla")
        } catch let error as MailError {
            throw ConfigError(setting: "FLOTILLA_SMTP_FROM", problem: error.message)
        }
        let authorities = try reader.optional("FLOTILLA_SMTP_CA_FILE")
        if let authorities, !FileManager.default.isReadableFile(atPath: authorities) {
            throw ConfigError(setting: "FLOTILLA_SMTP_CA_FILE", problem: "cannot read '\(authorities)'")
        }
        return SMTP(
            host: host, port: port, username: try reader.optional("FLOTILLA_SMTP_USER"),
            password: try reader.optional("FLOTILLA_SMTP_PASSWORD"), from: from, security: security,
            certificateAuthorityFile: authorities)
    }

    private static func readConfigFile(at path: String) throws -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError(setting: "FLOTILLA_CONFIG", problem: "cannot read '\(path)'")
        }
        var values: [String: String] = [:]
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigError(setting: "FLOTILLA_CONFIG", problem: "line \(number + 1) of '\(path)' is not KEY=value")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == value.last, first == "\"" || first == "'" {
                value = String(value.dropFirst().dropLast())
            }
            values[key] = value
        }
        return values
    }
}

/// A configuration value that cannot be used; the message names the setting.
public struct ConfigError: Error, CustomStringConvertible {
    public var setting: String
    public var problem: String
    public var description: String { "configuration error: \(setting) \(problem)" }
}

/// Reads typed values out of the raw settings, naming the setting on every error.
private struct SettingReader {
    var values: [String: String]

    func optional(_ name: String) throws -> String? {
        guard let value = values[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    func string(_ name: String, default defaultValue: String) throws -> String {
        try optional(name) ?? defaultValue
    }

    func integer(_ name: String, default defaultValue: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = try optional(name) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw ConfigError(setting: name, problem: "'\(text)' is not a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }
}
