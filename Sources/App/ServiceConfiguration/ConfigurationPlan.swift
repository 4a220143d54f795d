import Fluent
import Foundation
import Logging
import RemoteShell

/// What one wizard run means for one target VM: the files it gets (rendered for the guest and,
/// masked, for pages), the services to restart and the ports of its health gate. The preview, the
/// apply steps and the audit all build it here, from the run's row alone.
struct ConfigurationPlan {
    struct PlannedFile {
        let file: ServiceProfile.File
        /// With the secrets' values: only ever sent to the guest.
        let guestText: String
        /// With every secret masked: for pages, diffs and logs.
        let previewText: String
    }

    let run: ConfigurationRun
    let record: ServiceProfileRecord
    let profile: ServiceProfile
    let environment: Environment
    let vm: VM
    let role: String
    let files: [PlannedFile]
    let restart: [String]
    let healthPorts: [Int]
    let secretValues: [String: String]

    /// Loads the run's profile version, environment and dependency VMs and renders `vmID`'s files.
    /// Throws a validation error when the VM is not in the environment or its role is no target.
    static func load(runID: UUID, vmID: UUID, database: any Database, secrets: SecretBox) async throws -> ConfigurationPlan {
        guard let run = try await ConfigurationRun.find(runID, on: database) else {
            throw FlotillaError.notFound("no such configuration run")
        }
        guard let vm = try await VM.query(on: database).filter(\.$id == vmID).with(\.$role).first() else {
            throw FlotillaError.notFound("no such VM")
        }
        return try await load(run: run, vm: vm, database: database, secrets: secrets)
    }

    static func load(run: ConfigurationRun, vm: VM, database: any Database, secrets: SecretBox) async throws -> ConfigurationPlan {
        guard let record = try await ServiceProfileRecord.find(run.profileID, on: database) else {
            throw FlotillaError.notFound("the run's profile is gone")
        }
        let profiles = ServiceProfiles(database: database, secrets: secrets, actor: .system, logger: Logger(label: "flotilla.config"))
        let profile = try await profiles.profile(record, version: run.version)
        guard let environment = try await Environment.find(run.environmentID, on: database) else {
            throw FlotillaError.notFound("the run's environment is gone")
        }
        guard vm.$environment.id == run.environmentID else {
            throw FlotillaError.validation("\(vm.hostName) is not in environment \(environment.name)")
        }
        let role = vm.role.name
        guard let target = profile.targets[role] else {
            throw FlotillaError.validation(
                "\(vm.hostName) has role \(role); profile \(profile.name) configures \(profile.targets.keys.sorted().joined(separator: ", "))"
            )
        }
        let addresses = try await dependencyAddresses(run: run, profile: profile, database: database)
        let secretValues = try profiles.open(record)
        let renderer = ProfileRenderer(profile: profile, environment: environment.name, dependencyAddresses: addresses)
        let files = try target.files.map { file in
            PlannedFile(
                file: file, guestText: try renderer.render(file, mode: .guest(secrets: secretValues)),
                previewText: try renderer.render(file, mode: .preview))
        }
        return ConfigurationPlan(
            run: run, record: record, profile: profile, environment: environment, vm: vm, role: role, files: files,
            restart: target.restart ?? [], healthPorts: (target.health ?? []).compactMap(\.port), secretValues: secretValues)
    }

    /// The chosen VM's address for each dependency role, checked again: still in the
    /// environment and still of that role.
    static func dependencyAddresses(run: ConfigurationRun, profile: ServiceProfile, database: any Database) async throws -> [String: String]
    {
        var addresses: [String: String] = [:]
        let chosen = run.dependencies
        for role in profile.dependencies.keys.sorted() {
            guard let vmID = chosen[role], let vm = try await VM.query(on: database).filter(\.$id == vmID).with(\.$role).first(),
                vm.$environment.id == run.environmentID, vm.role.name == role
            else { throw FlotillaError.validation("choose a VM of role \(role) in the environment for the dependency \(role)") }
            addresses[role] = vm.ip
        }
        return addresses
    }

    /// Replaces every secret value in `text` (e.g. a file read from the guest) with the mask.
    func masked(_ text: String) -> String {
        ProfileRenderer.mask(text, secrets: Array(secretValues.values))
    }

    func guestFiles(shell: any GuestShell, login: GuestLogin) async throws -> GuestConfigFiles {
        GuestConfigFiles(shell: shell, target: try await login.target(for: vm, user: vm.role.sshUser))
    }
}
