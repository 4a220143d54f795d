import Vapor

/// What the layout of every page needs: title, the signed-in user, navigation, CSRF token
/// and a one-time notice.
struct PageChrome: Encodable {
    struct NavigationItem: Encodable {
        var title: String
        var url: String
        var active: Bool
    }

    struct SignedInUser: Encodable {
        var username: String
        var roleTitle: String
        var isSystem: Bool
    }

    var title: String
    var user: SignedInUser?
    var navigation: [NavigationItem]
    var csrf: String
    var notice: String?

    /// The sections of the whole product, in menu order, with the action that opens each.
    private static let sections: [(title: String, url: SiteURL, action: Action)] = [
        ("Dashboard", .dashboard, .viewDashboard),
        ("Environments", .environments, .viewEnvironments),
        ("Jobs", .jobs, .viewJobs),
        ("Upgrades", .upgrades, .viewUpgrades),
        ("Service configuration", .serviceConfiguration, .viewServiceConfiguration),
        ("Logs", .logs, .viewLogs),
        ("Users", .users, .viewUsers),
        ("Settings", .settings, .viewSettings),
    ]

    init(_ request: Request, title: String) {
        self.title = title
        let signedIn = request.auth.get(User.self)
        user = signedIn.map { SignedInUser(username: $0.username, roleTitle: $0.role.title, isSystem: $0.isSystemAdministrator) }
        let path = request.url.path
        navigation =
            signedIn.map { user in
                Self.sections.filter { $0.action.isAllowed(for: user.role) }.map { section in
                    let url = section.url.relative
                    let active = url == "/" ? path == "/" : path == url || path.hasPrefix(url + "/")
                    return NavigationItem(title: section.title, url: url, active: active)
                }
            } ?? []
        // An error raised before the sessions middleware ran is shown without session data.
        guard request.storage[SessionsReady.Key.self] == true else {
            csrf = ""
            notice = nil
            return
        }
        csrf = request.csrfToken
        // Anonymous visitors have no session, and reading one must not create it.
        notice = request.hasSession ? request.session.data[Self.noticeKey] : nil
        if notice != nil { request.session.data[Self.noticeKey] = nil }
    }

    static let noticeKey = "notice"
}

extension Request {
    /// Shows a message once on the next page (after a redirect).
    func notice(_ text: String) {
        session.data[PageChrome.noticeKey] = text
    }
}

struct ErrorPage: Encodable {
    var chrome: PageChrome
    var status: Int
    var message: String
}

/// The one pagination component (SPEC DASH-2, VM-1, LOG-2): previous / next / jump and page size.
struct PaginationView: Encodable {
    struct SizeOption: Encodable {
        var value: Int
        var url: String
        var selected: Bool
    }

    struct HiddenField: Encodable {
        var name: String
        var value: String
    }

    var page: Int
    var pageCount: Int
    var total: Int
    var per: Int
    var previousURL: String?
    var nextURL: String?
    var sizes: [SizeOption]
    var action: String
    var hiddenFields: [HiddenField]

    /// - Parameters:
    ///   - path: the list's path.
    ///   - query: the list's other query parameters (a search), kept on every link.
    init<Item>(_ page: Page<Item>, path: String, query: [(String, String)]) {
        self.page = page.request.page
        pageCount = page.pageCount
        total = page.total
        per = page.request.per
        func url(page: Int, per: Int) -> String {
            path + "?" + WebPath.query(query + [("page", String(page)), ("per", String(per))])
        }
        previousURL = page.request.page > 1 ? url(page: min(page.request.page - 1, page.pageCount), per: per) : nil
        nextURL = page.request.page < page.pageCount ? url(page: page.request.page + 1, per: per) : nil
        sizes = PageRequest.sizes.map { SizeOption(value: $0, url: url(page: 1, per: $0), selected: $0 == page.request.per) }
        action = path
        hiddenFields = (query + [("per", String(per))]).map { HiddenField(name: $0.0, value: $0.1) }
    }
}
