import Vapor

/// Settings → SSH keys: the platform's keys (public halves and fingerprints) and their rotation.
enum SSHKeysController {
    struct KeyRow: Encodable {
        var fingerprint: String
        var publicKey: String
        var created: String
        var state: String
        var vms: Int
    }

    struct Page: Encodable {
        var chrome: PageChrome
        var keys: [KeyRow]
        var rotateURL: String
        var mayRotate: Bool
    }

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.settingsSSHKeys.pathComponents, use: show).requires(.viewSettings)
        routes.post(SiteURL.settingsSSHKeysRotate.pathComponents, use: rotate).requires(.rotateSSHKeys)
    }

    @Sendable static func show(request: Request) async throws -> View {
        let display = DisplayTime(timeZone: request.application.flotilla.config.displayTimeZone)
        let keys = try await request.sshKeys.list().map { key in
            KeyRow(
                fingerprint: key.fingerprint, publicKey: key.publicKey, created: key.createdAt.map(display.string) ?? "",
                state: key.active ? "active" : key.retiredAt == nil ? "still trusted by some VMs" : "retired", vms: key.vms)
        }
        let page = Page(
            chrome: PageChrome(request, title: "SSH keys"), keys: keys, rotateURL: SiteURL.settingsSSHKeysRotate.relative,
            mayRotate: Action.rotateSSHKeys.isAllowed(for: try request.user.role))
        return try await request.view.render("ssh-keys", page)
    }

    @Sendable static func rotate(request: Request) async throws -> Response {
        let (key, jobID) = try await request.sshKeys.rotate()
        request.notice("New platform key \(key.fingerprint); every VM is being moved to it.")
        return request.redirect(to: SiteURL.job(id: jobID).relative)
    }
}
