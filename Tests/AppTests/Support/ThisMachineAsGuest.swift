import Foundation
import RemoteShell

@testable import App

/// This machine (the test runs as root) standing in for a guest, to run the App's guest scripts
/// for real: a root login and a command sent through `sudo -n` (cloud-init's rule for the
/// login's user) run as root, every other command as the login's user (`sudo -u`).
struct ThisMachineAsGuest: GuestShell {
    func run(_ command: Command, on target: SSHTarget, standardInput: [UInt8], timeout: Duration?) async throws -> CommandResult {
        let asRoot = target.user == "root" || command.commandLine.hasPrefix("sudo -n -- ")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments =
            asRoot ? ["-c", command.commandLine] : ["-c", #"exec sudo -n -u "$0" -- sh -c "$1""#, target.user, command.commandLine]
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Output is read on its own threads while the input is written, so neither side blocks.
        async let printed = Task.detached { output.fileHandleForReading.readDataToEndOfFile() }.value
        async let complaint = Task.detached { errors.fileHandleForReading.readDataToEndOfFile() }.value
        try input.fileHandleForWriting.write(contentsOf: Data(standardInput))
        try input.fileHandleForWriting.close()
        let (standardOutput, standardError) = await (printed, complaint)
        process.waitUntilExit()
        return CommandResult(
            exitStatus: Int(process.terminationStatus), standardOutput: Array(standardOutput), standardError: Array(standardError))
    }

    func hostKey(of target: SSHTarget) async throws -> SSHHostKey {
        throw FlotillaError(.unavailable, "this machine stands in for a guest's commands only")
    }

    func closeConnections(toHost host: String) async {}

    func shutdown() async {}
}
