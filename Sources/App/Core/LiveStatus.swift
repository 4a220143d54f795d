import Fluent
import RemoteShell
import Vapor

/// A VM as it is now: power state from vSphere, services from the guest (SPEC VM-5).
struct LiveStatus {
    let database: any Database
    let secrets: SecretBox
    let vsphere: any VSphereProvider
    let shell: any GuestShell

    /// Most guests probed at once, so a large environment does not open an SSH connection to
    /// every VM together.
    static let guestsAtOnce = 16

    struct LiveVM: Content {
        var id: UUID
        var powerState: String?
        var services: [GuestServices.Service]?
        /// Why the services could not be read (unreachable guest, refused login…).
        var servicesError: String?
    }

    /// Reads the environment's VMs live; the page shows the list first and fills these in,
    /// so a slow host delays only its own row.
    func of(environment environmentID: UUID) async throws -> [LiveVM] {
        // An unknown environment is not found, rather than an environment without VMs.
        guard try await Environment.find(environmentID, on: database) != nil else { throw FlotillaError.notFound("no such environment") }
        let vms = try await VM.query(on: database).filter(\.$environment.$id == environmentID).with(\.$role).all()
        var powerStates: [String: String] = [:]
        for connectionID in Set(vms.map { $0.role.$connection.id }) {
            guard let connection = try await VSphereConnection.find(connectionID, on: database),
                let endpoint = try? await vsphere.endpoint(for: connection),
                let machines = try? await endpoint.virtualMachines()
            else { continue }
            for machine in machines { powerStates[machine.reference.value] = machine.powerState.rawValue }
        }
        let services = GuestServices(shell: shell)
        let login = GuestLogin(keys: PlatformKeys(database: database, secrets: secrets))
        let permits = AsyncSemaphore(limit: Self.guestsAtOnce)
        return try await withThrowingTaskGroup(of: LiveVM.self) { group in
            for vm in vms {
                let id = try vm.requireID()
                let state = vm.vsphereReference.flatMap { powerStates[$0] }
                let names = vm.role.services.split(separator: ",").map(String.init)
                let user = vm.role.sshUser
                group.addTask {
                    guard state == "poweredOn", !names.isEmpty else {
                        return LiveVM(id: id, powerState: state, services: nil, servicesError: nil)
                    }
                    do {
                        let target = try await login.target(for: vm, user: user)
                        let running = try await permits.withPermit { try await services.probe(names, on: target) }
                        return LiveVM(id: id, powerState: state, services: running, servicesError: nil)
                    } catch {
                        return LiveVM(id: id, powerState: state, services: nil, servicesError: FlotillaError.describe(error))
                    }
                }
            }
            var answers: [LiveVM] = []
            for try await answer in group { answers.append(answer) }
            return answers
        }
    }
}

extension Request {
    var liveStatus: LiveStatus {
        let flotilla = application.flotilla
        return LiveStatus(database: db, secrets: flotilla.secrets, vsphere: flotilla.vsphere, shell: flotilla.shell)
    }
}
