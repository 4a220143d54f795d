import Crypto
import Foundation
import Vapor

/// Who sends an upgrade hook, and so how it is signed and what its payload looks like.
enum UpgradeHookFormat: String, CaseIterable, Codable, Sendable {
    /// An SVN `post-commit` hook running `curl` with the hook's token (`X-Flotilla-Token`).
    case svn
    /// GitHub push webhook, signed in `X-Hub-Signature-256`.
    case github
    /// GitLab push webhook; GitLab sends the secret itself in `X-Gitlab-Token`.
    case gitlab
    /// Gitea (and Forgejo) push webhook, signed in `X-Gitea-Signature`.
    case gitea
    /// Any sender: JSON `{"revision", "branch"?, "pushed_by"?}` signed with a timestamp.
    case generic

    var title: String {
        switch self {
        case .svn: "SVN post-commit"
        case .github: "GitHub"
        case .gitlab: "GitLab"
        case .gitea: "Gitea"
        case .generic: "Generic (HMAC)"
        }
    }

    /// The repository kind whose commits this format reports; nil: either (generic).
    var repositoryKind: RepositoryLocation.Kind? {
        switch self {
        case .svn: .svn
        case .github, .gitlab, .gitea: .git
        case .generic: nil
        }
    }
}

/// What a verified delivery asks for.
enum HookEvent: Equatable, Sendable {
    /// A new revision: a Git commit on `branch`, or an SVN revision (`branch` nil).
    case push(revision: String, branch: String?, pushedBy: String)
    /// Nothing to deploy (a ping, a tag, a deleted branch); the reason is answered and audited.
    case ignored(String)
}

/// One inbound hook request: its signature check and the parse of its sender's payload
/// (issue 12 §6). Parsing happens only after verification, so an unsigned body is never read.
struct HookDelivery: Sendable {
    let format: UpgradeHookFormat
    let headers: HTTPHeaders
    let body: Data

    /// A generic hook older or newer than this is refused (a replayed capture).
    static let clockSkewSeconds: Double = 300
    /// Largest body read; GitHub caps its payloads at 25 MB, a push of a few commits is a few kB.
    static let maximumBody: ByteCount = "5mb"

    /// Why a delivery was refused; said in the audit log, never in the answer.
    struct Refusal: Error, Equatable {
        let reason: String
    }

    /// Checks the sender's signature or token against the hook's secret.
    func verify(secret: String, now: Date = Date()) throws {
        let key = SymmetricKey(data: Data(secret.utf8))
        switch format {
        case .svn:
            try requireToken("X-Flotilla-Token", equals: secret)
        case .gitlab:
            try requireToken("X-Gitlab-Token", equals: secret)
        case .github:
            guard let header = headers.first(name: "X-Hub-Signature-256") else { throw Refusal(reason: "no X-Hub-Signature-256 header") }
            guard header.hasPrefix("sha256="), let signature = AgentIngestion.bytes(hex: String(header.dropFirst(7))),
                HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: body, using: key)
            else { throw Refusal(reason: "wrong X-Hub-Signature-256 signature") }
        case .gitea:
            guard let header = headers.first(name: "X-Gitea-Signature") else { throw Refusal(reason: "no X-Gitea-Signature header") }
            guard let signature = AgentIngestion.bytes(hex: header),
                HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: body, using: key)
            else { throw Refusal(reason: "wrong X-Gitea-Signature signature") }
        case .generic:
            guard let timestampText = headers.first(name: "X-Flotilla-Timestamp"), let timestamp = Double(timestampText),
                let header = headers.first(name: "X-Flotilla-Signature")
            else { throw Refusal(reason: "no X-Flotilla-Timestamp or X-Flotilla-Signature header") }
            guard abs(now.timeIntervalSince1970 - timestamp) <= Self.clockSkewSeconds else {
                throw Refusal(reason: "signature timestamp outside ±\(Int(Self.clockSkewSeconds)) s")
            }
            guard header.hasPrefix("sha256="), let signature = AgentIngestion.bytes(hex: String(header.dropFirst(7))),
                HMAC<SHA256>.isValidAuthenticationCode(
                    signature, authenticating: Self.genericMessage(timestamp: timestampText, body: body), using: key)
            else { throw Refusal(reason: "wrong X-Flotilla-Signature signature") }
        }
    }

    /// What the generic format signs: the timestamp header's text, a dot, the body.
    static func genericMessage(timestamp: String, body: Data) -> Data {
        Data("\(timestamp).".utf8) + body
    }

    /// Reads the sender's payload; a malformed one is a validation error naming what is wrong.
    func event() throws -> HookEvent {
        switch format {
        case .svn:
            let fields = Self.formFields(body)
            guard let revision = fields["revision"], !revision.isEmpty else {
                throw FlotillaError.validation("the SVN hook sends revision=$REV")
            }
            return .push(revision: revision, branch: nil, pushedBy: fields["author"].flatMap(Self.cleanName) ?? "svn post-commit")
        case .github:
            switch headers.first(name: "X-GitHub-Event") {
            case "ping": return .ignored("ping")
            case "push": return try gitPush(try json(formField: "payload"), pusher: ["pusher", "name"])
            default: return .ignored("not a push event")
            }
        case .gitea:
            switch headers.first(name: "X-Gitea-Event") ?? headers.first(name: "X-Gogs-Event") {
            case "push": return try gitPush(try json(formField: "payload"), pusher: ["pusher", "login"])
            default: return .ignored("not a push event")
            }
        case .gitlab:
            switch headers.first(name: "X-Gitlab-Event") {
            case "Push Hook": return try gitPush(try json(formField: nil), pusher: ["user_username"])
            case "Tag Push Hook": return .ignored("a tag push")
            default: return .ignored("not a push event")
            }
        case .generic:
            let payload = try json(formField: nil)
            guard let revision = payload["revision"] as? String, !revision.isEmpty else {
                throw FlotillaError.validation("the payload names the revision: {\"revision\": …, \"branch\": …}")
            }
            let branch = payload["branch"] as? String
            return .push(
                revision: revision, branch: branch, pushedBy: (payload["pushed_by"] as? String).flatMap(Self.cleanName) ?? "generic hook")
        }
    }

    /// GitHub, GitLab and Gitea share the push shape: `ref`, `after` and a pusher.
    private func gitPush(_ payload: [String: Any], pusher path: [String]) throws -> HookEvent {
        guard let ref = payload["ref"] as? String, let after = payload["after"] as? String else {
            throw FlotillaError.validation("a push payload names ref and after")
        }
        guard ref.hasPrefix("refs/heads/") else { return .ignored("a push to \(ref.hasPrefix("refs/tags/") ? "a tag" : "another ref")") }
        if payload["deleted"] as? Bool == true || after.allSatisfy({ $0 == "0" }) {
            return .ignored("a deleted branch")
        }
        var node: Any? = payload
        for key in path { node = (node as? [String: Any])?[key] }
        let name = (node as? String).flatMap(Self.cleanName) ?? (payload["pusher"] as? [String: Any])?["username"] as? String
        return .push(revision: after, branch: String(ref.dropFirst("refs/heads/".count)), pushedBy: name ?? "\(format.title) push")
    }

    /// The JSON object of the body, or of one form field of a form-encoded body (GitHub's and
    /// Gitea's "application/x-www-form-urlencoded" option).
    private func json(formField: String?) throws -> [String: Any] {
        var data = body
        if let formField, headers.contentType == .urlEncodedForm, let field = Self.formFields(body)[formField] {
            data = Data(field.utf8)
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw FlotillaError.validation("the payload is not a JSON object")
        }
        return object
    }

    private func requireToken(_ header: String, equals secret: String) throws {
        guard let sent = headers.first(name: header) else { throw Refusal(reason: "no \(header) header") }
        guard Self.constantTimeEqual(Array(sent.utf8), Array(secret.utf8)) else { throw Refusal(reason: "wrong \(header) token") }
    }

    private static func constantTimeEqual(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        guard left.count == right.count else { return false }
        return zip(left, right).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    static func formFields(_ body: Data) -> [String: String] {
        var components = URLComponents()
        components.percentEncodedQuery = String(decoding: body, as: UTF8.self).replacingOccurrences(of: "+", with: "%20")
        var fields: [String: String] = [:]
        for item in components.queryItems ?? [] where fields[item.name] == nil {
            fields[item.name] = item.value ?? ""
        }
        return fields
    }

    /// A sender-supplied name fit for the audit log: printable, at most 100 characters.
    private static func cleanName(_ name: String) -> String? {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, !UserValue.hasControlCharacters(trimmed) else { return nil }
        return String(trimmed.prefix(100))
    }
}
