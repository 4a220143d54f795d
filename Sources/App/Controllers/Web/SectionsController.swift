import Vapor

/// The product's sections that later modules fill in; until then each says honestly what
/// it will hold.
enum SectionsController {
    struct SectionPage: Encodable {
        var chrome: PageChrome
        var heading: String
        var summary: String
        var emptyState: String
    }

    private static let sections: [(url: SiteURL, action: Action, heading: String, summary: String, emptyState: String)] = [
        (
            .upgrades, .viewUpgrades, "Upgrades",
            "Every VM with its current and previous code revision; upgrade or roll back one or many.",
            "No VMs to upgrade yet."
        ),
        (
            .serviceConfiguration, .viewServiceConfiguration, "Service configuration",
            "Profiles that check an environment's dependency hosts and rewrite its services' configuration.",
            "No profiles are defined yet."
        ),
    ]

    static func register(_ routes: any RoutesBuilder) {
        for section in sections {
            routes.get(section.url.pathComponents) { request async throws -> View in
                let page = SectionPage(
                    chrome: PageChrome(request, title: section.heading), heading: section.heading,
                    summary: section.summary, emptyState: section.emptyState)
                return try await request.view.render("section", page)
            }.requires(section.action)
        }
    }
}
