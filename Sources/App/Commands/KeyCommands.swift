import ConsoleKit
import Fluent
import Foundation
import Vapor

/// `flotilla keys list` and `flotilla keys rotate`: the platform's SSH keys (SPEC BEY-9).
struct KeyCommands: AsyncCommandGroup {
    let help = "Show and rotate the platform's SSH key, with which Flotilla logs in to VMs"
    var commands: [String: any AnyAsyncCommand] { ["list": List(), "rotate": Rotate()] }

    struct List: AsyncCommand {
        struct Signature: CommandSignature {}
        let help = "List the platform's SSH keys (public halves and fingerprints) and how many VMs trust each"

        func run(using context: CommandContext, signature: Signature) async throws {
            for key in try await context.application.sshKeys(actor: UserCommands.actor).list() {
                let state = key.active ? "active" : key.retiredAt == nil ? "in use" : "retired"
                context.console.print("\(key.fingerprint)  \(state)  \(key.vms) VMs\n  \(key.publicKey)")
            }
        }
    }

    struct Rotate: AsyncCommand {
        struct Signature: CommandSignature {}
        let help = "Make a new platform key, put it on every reachable VM in place of the old one, and report per VM"

        func run(using context: CommandContext, signature: Signature) async throws {
            let app = context.application
            let (key, jobID) = try await app.sshKeys(actor: UserCommands.actor).rotate()
            context.console.print("New platform key \(key.fingerprint); job \(jobID)")
            // This process runs its own job (a server beside it may take steps too): wait for it,
            // then report each step.
            await app.flotilla.jobs.start(owner: app.instance.id, onlyJob: jobID)
            while let job = try await Job.find(jobID, on: app.db), [.queued, .running].contains(job.status) {
                try await Task.sleep(for: .milliseconds(500))
            }
            let steps = try await JobStep.query(on: app.db).filter(\.$job.$id == jobID).sort(\.$position).all()
            for step in steps {
                // The step's own last word (the engine's closing "done" says nothing more than the status).
                let lines = step.log.split(separator: "\n")
                let outcome = lines.last(where: { !$0.hasSuffix("] done") }) ?? lines.last ?? ""
                context.console.print(
                    "\(step.status.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0)) \(step.title): \(outcome)")
            }
            let job = try await Job.find(jobID, on: app.db)
            context.console.print(job?.summary ?? "")
            guard job?.status == .succeeded else { throw FlotillaError(.unavailable, "some VMs were not moved to the new key") }
        }
    }
}
