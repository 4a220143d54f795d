import Foundation
import Mustache

/// Renders a profile's file templates (Mustache) for one environment.
///
/// A template sees `{{environment}}`, `{{variables.NAME}}`, `{{dependencies.ROLE.address}}`
/// and `{{dependencies.ROLE.port}}` (the role's first check), and `{{secrets.NAME}}`. A name the
/// context does not hold is an error rather than an empty string, because an empty host in a
/// `settings.py` is exactly how a wrong configuration takes a service down.
///
/// Values are single lines everywhere (a line break would start a new setting). In a Python file
/// (`*.py`: `settings.py`, `conf.py`) every value is escaped as the content of a string literal
/// (`\\`, `\"`, `\'`), so a quote or backslash in a password stays in its string instead of
/// ending it and running as code; escaping rather than refusing, because passwords legitimately
/// hold such characters. Other files (supervisor's INI, plain text) have no string syntax to
/// escape into: values go in as written (the TEXT content type: no HTML escaping).
public struct ProfileRenderer: Sendable {
    /// What a preview shows in place of every secret.
    public static let secretMask = "••••••"

    /// Whether secrets are written out (for the guest) or masked (for pages, logs and diffs).
    public enum Mode: Sendable {
        case guest(secrets: [String: String])
        case preview
    }

    public var profile: ServiceProfile
    public var environment: String
    /// The chosen VM's address for each dependency role.
    public var dependencyAddresses: [String: String]

    public init(profile: ServiceProfile, environment: String, dependencyAddresses: [String: String]) {
        self.profile = profile
        self.environment = environment
        self.dependencyAddresses = dependencyAddresses
    }

    /// The text of `file` as the guest gets it (`.guest`) or as a page shows it (`.preview`).
    public func render(_ file: ServiceProfile.File, mode: Mode) throws -> String {
        try Environments.validateName(environment)
        var addresses: [String: String] = [:]
        for role in profile.dependencies.keys.sorted() {
            guard let address = dependencyAddresses[role] else {
                throw FlotillaError.validation("choose a VM for the dependency role '\(role)'")
            }
            guard IPAddress(address) != nil else {
                throw FlotillaError.validation("the address '\(address.prefix(40))' chosen for '\(role)' is not an IP address")
            }
            addresses[role] = address
        }
        let secrets: [String: String]
        switch mode {
        case .preview:
            secrets = Dictionary(uniqueKeysWithValues: (profile.secrets ?? []).map { ($0, Self.secretMask) })
        case .guest(let values):
            var chosen: [String: String] = [:]
            for name in profile.secrets ?? [] {
                guard let value = values[name] else { throw FlotillaError.validation("the secret '\(name)' has no value") }
                try ServiceProfile.checkSingleLine(value, field: "the secret '\(name)'")
                chosen[name] = value
            }
            secrets = chosen
        }
        return try Self.render(
            file.template, field: file.path,
            context: Self.context(
                profile: profile, environment: environment, addresses: addresses, secrets: secrets, escape: Self.escaping(for: file.path)
            ))
    }

    /// How values are escaped in the file at `path`: as Python string content in `*.py`, else not at all.
    static func escaping(for path: String) -> @Sendable (String) -> String {
        if path.hasSuffix(".py") { return { pythonStringContent($0) } }
        return { $0 }
    }

    /// `value` as the inside of a Python string literal (single, double or triple quoted): the
    /// backslash and both quotes escaped, control characters as `\xNN`.
    static func pythonStringContent(_ value: String) -> String {
        var escaped = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "'": escaped += "\\'"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: escaped += String(format: "\\x%02x", scalar.value)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// `text` (e.g. a file read from a guest) with every secret value masked, as written and as
    /// escaped into a Python string.
    static func mask(_ text: String, secrets: [String]) -> String {
        let forms = Set(secrets.filter { !$0.isEmpty }.flatMap { [$0, pythonStringContent($0)] })
        return forms.sorted { $0.count > $1.count }.reduce(text) { $0.replacingOccurrences(of: $1, with: secretMask) }
    }

    /// Parses `template` and renders it against placeholder values, so that a profile naming a
    /// variable, role or secret it does not declare is refused when it is saved, not when applied.
    static func checkTemplate(_ template: String, of profile: ServiceProfile, field: String) throws {
        guard template.utf8.count <= 64 * 1024 else { throw FlotillaError.validation("\(field) has at most 64 KB") }
        let addresses = Dictionary(uniqueKeysWithValues: profile.dependencies.keys.map { ($0, "192.0.2.1") })
        let secrets = Dictionary(uniqueKeysWithValues: (profile.secrets ?? []).map { ($0, secretMask) })
        _ = try render(
            template, field: field, context: context(profile: profile, environment: "environment", addresses: addresses, secrets: secrets))
    }

    private static func context(
        profile: ServiceProfile, environment: String, addresses: [String: String], secrets: [String: String],
        escape: (String) -> String = { $0 }
    ) -> StrictNode {
        var dependencies: [String: Any] = [:]
        for (role, address) in addresses {
            var entry: [String: Any] = ["address": escape(address)]
            if let port = profile.dependencies[role]?.checks.first?.effectivePort { entry["port"] = port }
            dependencies[role] = StrictNode(path: "dependencies.\(role)", values: entry)
        }
        return StrictNode(
            path: "",
            values: [
                "environment": escape(environment),
                "variables": StrictNode(path: "variables", values: (profile.variables ?? [:]).mapValues(escape)),
                "dependencies": StrictNode(path: "dependencies", values: dependencies),
                "secrets": StrictNode(path: "secrets", values: secrets.mapValues(escape)),
            ])
    }

    private static func render(_ template: String, field: String, context: StrictNode) throws -> String {
        let parsed: MustacheTemplate
        do {
            parsed = try MustacheTemplate(string: "{{% CONTENT_TYPE: TEXT}}" + template)
        } catch {
            throw FlotillaError.validation("\(field) is not a valid Mustache template: \(error)")
        }
        let text = parsed.render(context)
        if let unknown = context.misses.first {
            throw FlotillaError.validation(
                "\(field) uses {{\(unknown)}}, which is not defined (known: environment, variables.*, dependencies.ROLE.address/port, secrets.*)"
            )
        }
        return text
    }
}

/// A map in the template context that notes every name asked of it and not found.
///
/// Mustache renders an unknown name as nothing; noting the misses lets `render` refuse them.
/// Misses are shared by a whole context tree so the root sees them all. A reference found only
/// by climbing out of a section (`{{#variables}}{{environment}}{{/variables}}`) also counts as a
/// miss in the inner map; profiles have no need for such sections, and the error names the path.
private final class StrictNode: MustacheParent {
    final class Misses {
        var names: [String] = []
    }

    let path: String
    let values: [String: Any]
    private var shared = Misses()

    init(path: String, values: [String: Any]) {
        self.path = path
        self.values = values
        for child in values.values {
            (child as? StrictNode)?.adopt(shared)
        }
    }

    var misses: [String] { shared.names }

    private func adopt(_ misses: Misses) {
        shared = misses
        for child in values.values { (child as? StrictNode)?.adopt(misses) }
    }

    func child(named name: String) -> Any? {
        if let value = values[name] { return value }
        shared.names.append(path.isEmpty ? name : "\(path).\(name)")
        return nil
    }
}
