import RemoteShell
import Vapor

/// Which of a VM's services (process names) run inside its guest (SPEC VM-5).
struct GuestServices {
    struct Service: Content, Equatable {
        var name: String
        var running: Bool
    }

    let shell: any GuestShell

    /// One `pgrep -x` per name, in one command; a guest that does not answer within 5 s is an error.
    func probe(_ names: [String], on target: SSHTarget) async throws -> [Service] {
        let result = try await shell.run(
            Command.script(
                "for s in \"$@\"; do if pgrep -x \"$s\" >/dev/null; then echo \"up $s\"; else echo \"down $s\"; fi; done",
                arguments: names), on: target, timeout: .seconds(5))
        return result.output.split(separator: "\n").compactMap { line -> Service? in
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { return nil }
            return Service(name: String(parts[1]), running: parts[0] == "up")
        }
    }
}
