import Foundation
import Mustache
import Yams

/// A service configuration profile (SPEC CFG-1): which dependency roles an environment must
/// offer (and what to check on each), and which files the target roles get from templates.
///
/// ```yaml
/// name: spider
/// variables: { db_name: spider }
/// secrets: [mysql_password]
/// dependencies:
///   mysql: { checks: [{ kind: mysql, port: 3306 }] }
/// targets:
///   web:
///     files:
///       - path: /opt/spider/settings.py
///         owner: spider:spider
///         mode: "0640"
///         validate: [python3, -m, py_compile, "{file}"]
///         template: |
///           DATABASE_HOST = "{{dependencies.mysql.address}}"
///     restart: [spider-web]
/// ```
///
/// Everything a profile names ends up on a guest (a path, an owner, a command), so `parse`
/// refuses anything outside narrow rules and names the field at fault.
public struct ServiceProfile: Codable, Sendable, Equatable {
    /// What "ready" means for one service on a dependency VM.
    public struct Check: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable, CaseIterable {
            case redis, mysql, rabbitmq, mongo, nfs, tcp

            /// The port the service listens on when the profile names none; `tcp` has none.
            var defaultPort: Int? {
                switch self {
                case .redis: 6379
                case .mysql: 3306
                case .rabbitmq: 5672
                case .mongo: 27017
                case .nfs: 2049
                case .tcp: nil
                }
            }
        }

        public var kind: Kind
        public var port: Int?
        /// The login for checks that speak the protocol (MySQL, RabbitMQ).
        public var user: String?
        /// The name of one of the profile's `secrets`: the password that login uses.
        public var passwordSecret: String?
        /// MySQL: the schema `SELECT 1` runs in.
        public var database: String?
        /// RabbitMQ: the virtual host opened.
        public var vhost: String?
        /// NFS: the export expected in the server's export list.
        public var export: String?
        /// The process name a stand-in's process-and-port check looks for, when not the kind's usual one.
        public var process: String?

        enum CodingKeys: String, CodingKey {
            case kind, port, user, database, vhost, export, process
            case passwordSecret = "password_secret"
        }

        public init(kind: Kind, port: Int? = nil) {
            self.kind = kind
            self.port = port
        }

        /// The port checked: the profile's, else the kind's usual one.
        public var effectivePort: Int? { port ?? kind.defaultPort }
    }

    public struct Dependency: Codable, Sendable, Equatable {
        public var checks: [Check]
    }

    /// One file a target role gets.
    public struct File: Codable, Sendable, Equatable {
        public var path: String
        public var template: String
        /// `user` or `user:group`.
        public var owner: String
        /// Octal permission bits, e.g. "0644".
        public var mode: String
        /// A program and its arguments, run on the new file before it replaces the old one;
        /// the argument `{file}` stands for the new file's path.
        public var validate: [String]?
    }

    public struct Target: Codable, Sendable, Equatable {
        public var files: [File]
        /// Services restarted (once, after all files) when any of this role's files changed.
        public var restart: [String]?
        /// Ports that must answer on the target itself (127.0.0.1) after a restart, within the
        /// health gate's 30 s, besides every restarted service running.
        public var health: [Check]?
    }

    public var name: String
    public var description: String?
    public var variables: [String: String]?
    /// Names of secrets the templates use as `{{secrets.NAME}}`; the values are kept sealed elsewhere.
    public var secrets: [String]?
    public var dependencies: [String: Dependency]
    public var targets: [String: Target]

    /// The only folders on a guest a profile may write to: the services' own trees and
    /// supervisor's drop-in folder. System files (`/etc/shadow`, `/etc/sudoers`, …) are out of reach.
    public static let allowedDirectories = ["/opt/", "/srv/", "/var/www/", "/etc/supervisor/conf.d/"]

    /// The argument of a validate command that stands for the new file.
    public static let filePlaceholder = "{file}"

    static let maximumSize = 256 * 1024

    /// Reads and validates a profile; throws a validation error naming the first field at fault.
    public static func parse(_ text: String) throws -> ServiceProfile {
        guard text.utf8.count <= maximumSize else { throw FlotillaError.validation("a profile has at most 256 KB") }
        try YAMLLimits.check(text, what: "the profile")
        let profile: ServiceProfile
        do {
            profile = try YAMLDecoder().decode(ServiceProfile.self, from: text)
        } catch let error as DecodingError {
            throw FlotillaError.validation("the profile is not valid: \(error.fieldExplanation)")
        } catch {
            throw FlotillaError.validation("the profile is not valid YAML: \(error)")
        }
        try profile.validate()
        return profile
    }

    /// The bundled example profiles (`Resources/Profiles`), beside the views.
    public static func examplesDirectory(in resources: ResourceDirectory) -> String {
        URL(fileURLWithPath: resources.path).appendingPathComponent("Resources/Profiles").path
    }

    func validate() throws {
        try Self.checkName(name, field: "name")
        if let description, description.count > 2000 {
            throw FlotillaError.validation("description has at most 2000 characters")
        }
        for (key, value) in variables ?? [:] {
            try Self.checkName(key, field: "variables")
            try Self.checkSingleLine(value, field: "variables.\(key)")
        }
        var seenSecrets = Set<String>()
        for secret in secrets ?? [] {
            try Self.checkName(secret, field: "secrets")
            guard seenSecrets.insert(secret).inserted else {
                throw FlotillaError.validation("secrets: '\(secret)' is listed twice")
            }
        }
        guard !targets.isEmpty else { throw FlotillaError.validation("targets: name at least one target role") }
        for (role, dependency) in dependencies {
            try Self.checkName(role, field: "dependencies")
            guard !dependency.checks.isEmpty else {
                throw FlotillaError.validation("dependencies.\(role).checks: name at least one service to check")
            }
            for (index, check) in dependency.checks.enumerated() {
                let field = "dependencies.\(role).checks[\(index)].port"
                guard let port = check.effectivePort else {
                    throw FlotillaError.validation("\(field) is required for a \(check.kind.rawValue) check")
                }
                guard (1...65535).contains(port) else { throw FlotillaError.validation("\(field) must be 1 to 65535") }
                try Self.checkCheckFields(check, secrets: seenSecrets, field: "dependencies.\(role).checks[\(index)]")
            }
        }
        for (role, target) in targets {
            try Self.checkName(role, field: "targets")
            guard dependencies[role] == nil else {
                throw FlotillaError.validation("targets.\(role): a role is either a dependency or a target, not both")
            }
            guard !target.files.isEmpty else { throw FlotillaError.validation("targets.\(role).files: name at least one file") }
            var seenPaths = Set<String>()
            for (index, file) in target.files.enumerated() {
                let field = "targets.\(role).files[\(index)]"
                try Self.checkPath(file.path, field: "\(field).path")
                guard seenPaths.insert(file.path).inserted else {
                    throw FlotillaError.validation("\(field).path: \(file.path) is listed twice for this role")
                }
                try Self.checkOwner(file.owner, field: "\(field).owner")
                try Self.checkMode(file.mode, field: "\(field).mode")
                if let validate = file.validate { try Self.checkCommand(validate, field: "\(field).validate") }
                try ProfileRenderer.checkTemplate(file.template, of: self, field: "\(field).template")
            }
            for service in target.restart ?? [] {
                try Self.checkServiceName(service, field: "targets.\(role).restart")
            }
            for (index, check) in (target.health ?? []).enumerated() {
                let field = "targets.\(role).health[\(index)]"
                guard check.kind == .tcp, let port = check.port, (1...65535).contains(port) else {
                    throw FlotillaError.validation("\(field): a health check is { kind: tcp, port: 1 to 65535 }")
                }
            }
        }
    }

    /// The optional fields of a dependency check: single lines, a declared secret, a plain process name.
    static func checkCheckFields(_ check: Check, secrets: Set<String>, field: String) throws {
        for (name, value) in [("user", check.user), ("database", check.database), ("vhost", check.vhost), ("export", check.export)] {
            if let value { try checkSingleLine(value, field: "\(field).\(name)") }
        }
        if let secret = check.passwordSecret, !secrets.contains(secret) {
            throw FlotillaError.validation("\(field).password_secret: '\(secret.prefix(64))' is not one of the profile's secrets")
        }
        if let process = check.process { try checkServiceName(process, field: "\(field).process") }
    }

    /// Names of the profile, roles, variables and secrets: they become template keys and page labels.
    static func checkName(_ name: String, field: String) throws {
        guard let first = name.first, first.isASCII, first.isLetter || first == "_", name.count <= 64,
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
        else {
            throw FlotillaError.validation(
                "\(field): '\(name.prefix(80))' must start with a letter or '_' and hold at most 64 letters, digits, '_' or '-'")
        }
    }

    /// A value that lands inside one line of a settings file: a line break would start a new setting.
    static func checkSingleLine(_ value: String, field: String) throws {
        guard value.count <= 4096 else { throw FlotillaError.validation("\(field) has at most 4096 characters") }
        guard !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == "\u{2028}" || $0 == "\u{2029}" })
        else {
            throw FlotillaError.validation("\(field) must be one line without control characters (a line break would start a new setting)")
        }
    }

    /// An absolute, already-normalised path under one of `allowedDirectories`, made of plain names.
    ///
    /// Components are limited to letters, digits, `.`, `_` and `-` and may not start with `.`,
    /// so `..`, `.`, hidden files, `~`, `//`, backslashes and control characters are all refused
    /// before any normalisation could reinterpret them. Whether a component is a symbolic link on
    /// the guest can only be told there; the apply step refuses to write through one.
    static func checkPath(_ path: String, field: String) throws {
        let allowed = allowedDirectories.joined(separator: ", ")
        guard path.hasPrefix("/"), path.count <= 255 else {
            throw FlotillaError.validation("\(field): '\(path.prefix(80))' must be an absolute path of at most 255 characters")
        }
        let components = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        for component in components {
            guard let first = component.first, first != ".", first != "-", component.count <= 128,
                component.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
            else {
                throw FlotillaError.validation(
                    "\(field): '\(path.prefix(80))' must be a plain absolute path: each part letters, digits, '.', '_' or '-', "
                        + "not starting with '.' or '-' (no '..', '//' or trailing '/')")
            }
        }
        guard let directory = allowedDirectories.first(where: { path.hasPrefix($0) }), path.count > directory.count else {
            throw FlotillaError.validation("\(field): '\(path)' is outside the folders a profile may write to (\(allowed))")
        }
    }

    /// `user` or `user:group`, each a POSIX-portable login name.
    static func checkOwner(_ owner: String, field: String) throws {
        let parts = owner.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy(isAccountName) else {
            throw FlotillaError.validation(
                "\(field): '\(owner.prefix(80))' must be 'user' or 'user:group' (lower-case letters, digits, '_' or '-', at most 32)")
        }
    }

    private static func isAccountName(_ name: Substring) -> Bool {
        guard let first = name.first, first.isASCII, first.isLowercase || first == "_", name.count <= 32 else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_" || $0 == "-") }
    }

    /// Three or four octal digits without setuid, setgid or sticky bits, and not writable by others.
    static func checkMode(_ mode: String, field: String) throws {
        let digits = mode.count == 4 && mode.first == "0" ? String(mode.dropFirst()) : mode
        guard digits.count == 3, digits.allSatisfy({ ("0"..."7").contains($0) }) else {
            throw FlotillaError.validation(
                "\(field): '\(mode.prefix(20))' must be octal permissions like \"0644\" (no setuid, setgid or sticky bit)")
        }
        guard let others = digits.last?.wholeNumberValue, others & 2 == 0 else {
            throw FlotillaError.validation("\(field): '\(mode)' would let every user on the guest rewrite the file")
        }
    }

    /// A systemd or supervisor service name: no spaces, quotes or shell characters.
    static func checkServiceName(_ name: String, field: String) throws {
        guard let first = name.first, first.isASCII, first.isLetter || first.isNumber, name.count <= 64,
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "@._:-".contains($0)) })
        else {
            throw FlotillaError.validation(
                "\(field): '\(name.prefix(80))' must be a service name: letters, digits, '@', '.', '_', ':' or '-', at most 64")
        }
    }

    /// A validate command is an argument list, never a shell line.
    ///
    /// Kept as argv so that nothing in it is ever parsed by a shell: the apply step quotes each
    /// word (RemoteShell `Command.quote`). A shell form would make `;`, `|`, `$()` in a profile
    /// run arbitrary commands as root on every target, for no need a validator has. The program is
    /// a plain name or absolute path; arguments are single lines, and `{file}` must appear so the
    /// command actually looks at the new file.
    static func checkCommand(_ argv: [String], field: String) throws {
        guard let program = argv.first, argv.count <= 32 else {
            throw FlotillaError.validation("\(field): give the program and its arguments as a list of 1 to 32 words")
        }
        let programIsPlain =
            program.count <= 255 && !program.hasPrefix("-")
            && program.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "/._-+".contains($0)) }
            && !program.split(separator: "/").contains("..")
        guard programIsPlain else {
            throw FlotillaError.validation(
                "\(field)[0]: '\(program.prefix(80))' must be a program name or absolute path without shell characters "
                    + "(the command is a list of words, never run by a shell)")
        }
        for (index, argument) in argv.enumerated().dropFirst() {
            try checkSingleLine(argument, field: "\(field)[\(index)]")
        }
        guard argv.contains(filePlaceholder) else {
            throw FlotillaError.validation("\(field): one argument must be \(filePlaceholder), the new file to check")
        }
    }
}
