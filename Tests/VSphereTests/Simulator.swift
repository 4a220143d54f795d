import Foundation
import VSphere
import XCTest

/// A vcsim process of the test's own (lab/vcsim, built by `scripts/vcsim build`), on a free
/// loopback port chosen by the kernel; its URL and certificate thumbprint are read from its output.
final class Simulator: @unchecked Sendable {
    enum Model: String {
        case vCenter = "vcenter"
        case esxi = "esxi"
    }

    static let username = "flotilla"
    static let password = "s3cret!"

    let process: Process
    let url: URL
    let thumbprint: String?
    let model: Model

    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static var binary: String {
        ProcessInfo.processInfo.environment["FLOTILLA_VCSIM"] ?? packageRoot.appendingPathComponent(".tools/vcsim").path
    }

    init(
        model: Model,
        vms: Int = 3,
        templates: [String] = ["web", "mysql"],
        tls: Bool = true,
        extraArguments: [String] = []
    ) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw SimulatorError("vcsim binary not found at \(Self.binary): run `scripts/vcsim build` first (or set FLOTILLA_VCSIM)")
        }
        self.model = model
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments =
            [
                "-model", model.rawValue, "-vms", String(vms), "-templates", templates.joined(separator: ","),
                "-listen", "127.0.0.1:0", "-username", Self.username, "-password", Self.password, "-tls=\(tls)",
            ] + extraArguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process

        var lines: [String: String] = [:]
        var buffer = Data()
        let handle = output.fileHandleForReading
        let deadline = Date().addingTimeInterval(120)
        while lines["VCSIM_URL"] == nil || (tls && lines["VCSIM_THUMBPRINT_SHA256"] == nil) {
            let chunk = handle.availableData
            if chunk.isEmpty {
                process.terminate()
                throw SimulatorError("vcsim exited before printing its URL")
            }
            buffer.append(chunk)
            for line in String(decoding: buffer, as: UTF8.self).split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { lines[String(parts[0])] = String(parts[1]) }
            }
            if Date() > deadline {
                process.terminate()
                throw SimulatorError("vcsim did not start within 120 s")
            }
        }
        guard let url = lines["VCSIM_URL"].flatMap(URL.init(string:)) else {
            process.terminate()
            throw SimulatorError("bad VCSIM_URL")
        }
        self.url = url
        self.thumbprint = lines["VCSIM_THUMBPRINT_SHA256"]
    }

    var trust: TrustPolicy { thumbprint.map { .pinnedSHA256($0) } ?? .system }

    private let clients = Locked<[VSphereClient]>([])

    /// A client logged in to this simulator; `shutdown()` releases it even if the test failed midway.
    func connect(timeout: Duration = .seconds(20)) async throws -> VSphereClient {
        let client = try await VSphereClient.connect(
            url: url, username: Self.username, password: Self.password, trust: trust, timeout: timeout)
        clients.withLockedValue { $0.append(client) }
        return client
    }

    /// Closes every client (HTTP clients must be shut down before they are released), then stops vcsim.
    func shutdown() async {
        for client in clients.withLockedValue({ $0 }) {
            try? await client.connection.transport.shutdown()
        }
        stop()
    }

    /// Hard kill (SIGKILL): the "hypervisor went away" case.
    func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit { stop() }

    /// Asks pyvmomi (scripts/pyvmomi_probe.py) what it sees on this simulator.
    func probe(_ arguments: [String]) throws -> [String: Any] {
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments =
            [
                "python3", Self.packageRoot.appendingPathComponent("scripts/pyvmomi_probe.py").path,
                "--url", url.absoluteString, "--username", Self.username, "--password", Self.password,
            ] + arguments
        let output = Pipe()
        let errors = Pipe()
        python.standardOutput = output
        python.standardError = errors
        try python.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        guard python.terminationStatus == 0,
            let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        else {
            throw SimulatorError("pyvmomi probe failed (\(python.terminationStatus)): \(errorText)")
        }
        return object
    }
}

struct SimulatorError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
