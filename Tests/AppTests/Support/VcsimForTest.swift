import Foundation
import XCTest

@testable import App

/// vcsim's vCenter model from the project's launcher (`scripts/vcsim build`), on a free port.
final class VcsimForTest: @unchecked Sendable {
    static let username = "flotilla"
    static let password = "vcsim-pass-1"
    let process = Process()
    let url: String
    let thumbprint: String?

    /// - Parameter vms: powered-on VMs besides the `tpl-web` template.
    init(vms: Int = 1) throws {
        let binary = ResourceDirectory.checkoutDirectory + "/.tools/vcsim"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw VcsimProblem(description: "vcsim not built at \(binary): run `scripts/vcsim build`")
        }
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "-model", "vcenter", "-vms", String(vms), "-templates", "web", "-listen", "127.0.0.1:0",
            "-username", Self.username, "-password", Self.password,
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var text = ""
        let deadline = Date().addingTimeInterval(120)
        // The launcher prints the URL, then the thumbprint line, then flushes.
        while text.range(of: "VCSIM_THUMBPRINT_SHA256=[^\n]*\n", options: .regularExpression) == nil {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty, Date() < deadline else {
                process.terminate()
                throw VcsimProblem(description: "vcsim did not start: \(text)")
            }
            text += String(decoding: chunk, as: UTF8.self)
        }
        func value(_ name: String) -> String? {
            text.split(separator: "\n").first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
        }
        url = value("VCSIM_URL") ?? ""
        thumbprint = value("VCSIM_THUMBPRINT_SHA256")
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}

struct VcsimProblem: Error, CustomStringConvertible {
    var description: String
}
