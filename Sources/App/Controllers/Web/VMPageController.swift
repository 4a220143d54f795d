import Fluent
import Vapor

/// One VM's page (SPEC DASH-5): where it lives, its configuration, power and guest, its live
/// health with the reachability history, and what changed outside Flotilla.
enum VMPageController {
    struct HistoryRow: Encodable {
        var at: String
        var health: String
        var label: String
        var previous: String
        var reason: String
    }

    struct DriftRow: Encodable {
        var at: String
        var field: String
        var recorded: String
        var observed: String
    }

    struct Page: Encodable {
        var chrome: PageChrome
        var id: String
        var hostName: String
        var environment: String
        var environmentURL: String
        var role: String
        var ip: String
        var prefixLength: Int
        var gateway: String
        var dns: String?
        var resources: String
        var powerState: String
        var guestOS: String
        var status: String
        var statusReason: String?
        var vsphereReference: String
        var health: String
        var label: String
        var reason: String
        var since: String?
        var sequence: String
        var notes: String
        var hasNotes: Bool
        var notesURL: String
        var powerURL: String
        var history: [HistoryRow]
        var drift: [DriftRow]
        var canPower: Bool
        var canEditNotes: Bool
    }

    /// Most history and drift rows shown; the API pages through all of them.
    static let recentRows = 50

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.vm(id: nil).pathComponents, use: show).requires(.viewVMs)
    }

    @Sendable static func show(request: Request) async throws -> View {
        let id = try request.uuidParameter("VM")
        let vm = try await request.vms.find(id)
        let fleet = request.application.fleetStatus
        let summary = await fleet.summary()
        let entry = await fleet.entry(id)
        let display = DisplayTime(timeZone: request.application.flotilla.config.displayTimeZone)
        let history = try await ReachabilityChangeRecord.query(on: request.db).filter(\.$vm.$id == id)
            .sort(\.$at, .descending).limit(recentRows).all()
        let drift = try await VMDrift.query(on: request.db).filter(\.$vm.$id == id).sort(\.$at, .descending).limit(recentRows).all()
        let role = request.auth.get(User.self)?.role
        let resources = [
            vm.cpus.map { "\($0) CPU" }, vm.memoryMB.map { "\($0) MB memory" }, vm.diskGB.map { String(format: "%.0f GB disk", $0) },
        ].compactMap { $0 }.joined(separator: " · ")
        return try await request.view.render(
            "vm",
            Page(
                chrome: PageChrome(request, title: vm.hostName), id: id.uuidString, hostName: vm.hostName,
                environment: vm.environment.name, environmentURL: SiteURL.environment(id: vm.$environment.id).relative,
                role: vm.role.name, ip: vm.ip, prefixLength: vm.prefixLength, gateway: vm.gateway,
                dns: [vm.dns1, vm.dns2].compactMap { $0 }.nonEmptyJoined, resources: resources.isEmpty ? "—" : resources,
                powerState: entry?.powerState ?? vm.powerState ?? "unknown", guestOS: vm.guestOS ?? "—", status: vm.status.rawValue,
                statusReason: vm.statusReason, vsphereReference: vm.vsphereReference ?? "—",
                health: entry?.health.rawValue ?? vm.status.rawValue, label: entry?.health.label ?? vm.status.rawValue,
                reason: entry?.reason ?? "not watched (\(vm.status.rawValue))", since: entry?.since.map(display.string),
                sequence: String(summary.sequence), notes: vm.notes, hasNotes: !vm.notes.isEmpty,
                notesURL: SiteURL.vmNotes(id: id).relative,
                powerURL: SiteURL.vmPower(id: id).relative,
                history: history.map { change in
                    HistoryRow(
                        at: display.string(change.at), health: change.health,
                        label: VMHealth(rawValue: change.health)?.label ?? change.health,
                        previous: VMHealth(rawValue: change.previous)?.label ?? change.previous, reason: change.reason)
                },
                drift: drift.map { DriftRow(at: display.string($0.at), field: $0.field, recorded: $0.recorded, observed: $0.observed) },
                canPower: Action.powerVM.isAllowed(for: role), canEditNotes: Action.editVMNotes.isAllowed(for: role)))
    }
}

extension Array where Element == String {
    /// The items joined with commas, or nil when there are none.
    fileprivate var nonEmptyJoined: String? { isEmpty ? nil : joined(separator: ", ") }
}
