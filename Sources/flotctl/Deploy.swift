import ArgumentParser
import Foundation
import Yams

/// `flotctl deploy BLUEPRINT.yaml`: an environment and all its VMs from a blueprint, in one job.
struct Deploy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create an environment and all its VMs from a blueprint (one job).",
        discussion: """
            A blueprint with `password: shared` (the default) asks for the VMs' password, or reads it \
            from standard input with --password-stdin; `password: generated` gives each VM its own.
            """)

    @Argument(help: "The blueprint, a YAML file.") var blueprint: String
    @Flag(help: "Read the shared VM password from the first line of standard input.") var passwordStdin = false
    @OptionGroup var job: JobOptions

    /// Only the part of the blueprint the client needs; the server checks the whole of it.
    private struct PasswordPolicy: Decodable {
        var name: String?
        var password: String?
    }

    func run() async throws {
        let text: String
        do {
            text = try String(contentsOfFile: blueprint, encoding: .utf8)
        } catch {
            throw ClientFailure(.badUsage, "cannot read the blueprint \(blueprint): \(error.localizedDescription)")
        }
        // A document the client cannot read is sent as it is, so the server's own message explains it.
        let policy = try? YAMLDecoder().decode(PasswordPolicy.self, from: text)
        var request = Shapes.Deploy(blueprint: text)
        if policy != nil, policy?.password ?? "shared" == "shared" {
            let (password, confirmation) = try Terminal.newPassword(fromStandardInput: passwordStdin, for: "the VMs")
            request.password = password
            request.passwordConfirmation = confirmation
        }
        try await APIClient.withStoredLogin { client in
            let fetched = try await client.post(Shapes.Deployment.self, "/blueprints/deploy", json: request)
            let count = fetched.value.vms.map { " (\($0) VMs)" } ?? ""
            try await job.started(
                fetched.value.jobID, answer: fetched, "Deploying environment \(policy?.name ?? blueprint)\(count)", client: client)
        }
    }
}
