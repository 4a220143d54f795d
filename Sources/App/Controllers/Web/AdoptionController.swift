import Fluent
import VSphere
import Vapor

/// The page for adopting VMs that vSphere has and Flotilla does not manage yet (SPEC BEY-4):
/// the same adoption as `POST /api/v1/environments/{id}/adopt`, through `Request.adoptVMs`.
enum AdoptionController {
    struct Candidate: Encodable {
        var name: String
        var powerState: String
        var address: String
        var guestOS: String
        var checked: Bool
    }

    struct Choice: Encodable {
        var id: String
        var name: String
        var selected: Bool
    }

    struct Page: Encodable {
        var chrome: PageChrome
        var connections: [Choice]
        var environments: [Choice]
        var roles: [Choice]
        var connectionID: String
        var candidates: [Candidate]
        var error: String?
    }

    static func register(_ routes: any RoutesBuilder) {
        routes.get(SiteURL.adopt.pathComponents, use: show).requires(.addVM)
        routes.post(SiteURL.adopt.pathComponents, use: adopt).requires(.addVM)
    }

    @Sendable static func show(request: Request) async throws -> Response {
        let query = QueryParameters(request.url.query)
        return try await render(
            request, connection: query.first("connection"), environment: query.first("environment"), role: nil, checked: [],
            error: nil, status: .ok)
    }

    @Sendable static func adopt(request: Request) async throws -> Response {
        let form = QueryParameters(request.body.string)
        let names = form.all("name")
        do {
            guard let connectionID = form.first("connection").flatMap(UUID.init(uuidString:)) else {
                throw FlotillaError.validation("choose a vSphere connection")
            }
            guard let environmentID = form.first("environment").flatMap(UUID.init(uuidString:)) else {
                throw FlotillaError.validation("choose an environment")
            }
            guard !names.isEmpty else { throw FlotillaError.validation("select at least one VM") }
            let input = VSphereImport.Input(
                connectionID: connectionID, names: names, role: form.first("role") ?? "", password: form.first("password") ?? "")
            let (vms, agentJobID) = try await request.adoptVMs(input, into: environmentID)
            request.notice("Adopted \(vms.count) VM\(vms.count == 1 ? "" : "s").")
            if let agentJobID { return request.redirect(to: SiteURL.job(id: agentJobID).relative) }
            return request.redirect(to: SiteURL.environment(id: environmentID).relative)
        } catch let error as FlotillaError {
            return try await render(
                request, connection: form.first("connection"), environment: form.first("environment"), role: form.first("role"),
                checked: Set(names), error: error.message, status: error.status)
        } catch {
            // vSphere failing underneath (unreachable, its login refused): shown with the form, the selection kept.
            return try await render(
                request, connection: form.first("connection"), environment: form.first("environment"), role: form.first("role"),
                checked: Set(names), error: FlotillaError.describe(error), status: .badGateway)
        }
    }

    /// The form, listing the chosen connection's VMs that are neither templates nor managed.
    private static func render(
        _ request: Request, connection: String?, environment: String?, role: String?, checked: Set<String>, error: String?,
        status: HTTPResponseStatus
    ) async throws -> Response {
        let connections = try await VSphereConnection.query(on: request.db).sort(\.$name).all()
        let chosen = connections.first { $0.id?.uuidString == connection } ?? connections.first
        var candidates: [Candidate] = []
        var listError: String?
        if let chosen {
            do {
                let managed = Set(try await VM.query(on: request.db).field(\.$vsphereReference).all().compactMap(\.vsphereReference))
                candidates = try await request.application.flotilla.vsphere.endpoint(for: chosen).virtualMachines(fields: [])
                    .filter { !$0.isTemplate && !managed.contains($0.reference.value) }
                    .sorted { $0.name < $1.name }
                    .map { machine in
                        Candidate(
                            name: machine.name, powerState: machine.powerState.rawValue, address: machine.guestIPAddress ?? "",
                            guestOS: machine.guestOS ?? "", checked: checked.contains(machine.name))
                    }
            } catch {
                listError = "vSphere could not be read: \(FlotillaError.describe(error))"
            }
        }
        let environments = try await Environment.query(on: request.db).sort(\.$name).all()
        let roles = try await Role.query(on: request.db).sort(\.$name).all()
        let page = Page(
            chrome: PageChrome(request, title: "Adopt VMs from vSphere"),
            connections: try connections.map {
                Choice(id: try $0.requireID().uuidString, name: $0.name, selected: $0.id == chosen?.id)
            },
            environments: try environments.map {
                Choice(id: try $0.requireID().uuidString, name: $0.name, selected: $0.id?.uuidString == environment)
            },
            roles: roles.map { Choice(id: $0.name, name: $0.name, selected: $0.name == role) },
            connectionID: chosen?.id?.uuidString ?? "", candidates: candidates, error: error ?? listError)
        let response = try await request.view.render("adopt", page).encodeResponse(for: request)
        response.status = status
        return response
    }
}
