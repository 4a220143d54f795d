import Foundation
import Vapor

/// A VM of the list with its live health: what the page's rows and the API's list show.
struct VMListing: Content {
    var id: UUID
    var hostName: String
    var ip: String
    var role: String
    var environmentID: UUID
    var environment: String
    var status: String
    var powerState: String?
    var guestOS: String?
    var cpus: Int?
    var memoryMB: Int?
    var diskGB: Double?
    var notes: String
    /// `VMHealth`, or the record's status (provisioning, failed, missing) for VMs not watched.
    var health: String
    var healthLabel: String
    var reason: String
    var reachable: Bool

    /// Joins a page of rows with the live health of their VMs.
    static func page(_ rows: Page<VMDirectory.Row>, fleet: FleetStatus) async -> Page<VMListing> {
        let live = await fleet.health(of: rows.items.map(\.id))
        return rows.map { row in
            let entry = live[row.id]
            let health = entry?.health.rawValue ?? row.status
            return VMListing(
                id: row.id, hostName: row.host_name, ip: row.ip, role: row.role, environmentID: row.environment_id,
                environment: row.environment, status: row.status, powerState: entry?.powerState ?? row.power_state,
                guestOS: row.guest_os, cpus: row.cpus, memoryMB: row.memory_mb, diskGB: row.disk_gb, notes: row.notes,
                health: health, healthLabel: entry?.health.label ?? row.status, reason: entry?.reason ?? "not watched (\(row.status))",
                reachable: entry?.health.isReachable ?? false)
        }
    }

    /// `2 CPU · 2048 MB · 20 GB`
    var resources: String {
        [cpus.map { "\($0) CPU" }, memoryMB.map { "\($0) MB" }, diskGB.map { String(format: "%.0f GB", $0) }]
            .compactMap { $0 }.joined(separator: " · ")
    }
}

extension VMListing: JSONWritable {
    func write(to json: inout JSONWriter) {
        json.object { json in
            json.field("id", id)
            json.field("hostName", hostName)
            json.field("ip", ip)
            json.field("role", role)
            json.field("environmentID", environmentID)
            json.field("environment", environment)
            json.field("status", status)
            json.field("powerState", powerState)
            json.field("guestOS", guestOS)
            json.field("cpus", cpus)
            json.field("memoryMB", memoryMB)
            json.field("diskGB", diskGB)
            json.field("notes", notes)
            json.field("health", health)
            json.field("healthLabel", healthLabel)
            json.field("reason", reason)
            json.field("reachable", reachable)
        }
    }
}
