import Foundation
import Lab
import XCTest

@testable import App

/// The six thesis profiles shipped in `Resources/Profiles` (SPEC CFG-1): each parses and passes
/// validation, every file renders for the guest and for a preview (secrets masked), and every
/// rendered Python file passes its own validate command (`python3 -m py_compile`), and every
/// dependency and target is a role the lab runs.
final class ShippedProfilesTests: XCTestCase {
    static let thesisProfiles = ["dns", "stability", "web-tampering", "spider", "web-speed-test", "third-party-notice"]

    private var directory: String {
        ServiceProfile.examplesDirectory(in: ResourceDirectory(path: ResourceDirectory.checkoutDirectory))
    }

    func testEveryShippedProfileParsesValidatesAndRenders() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") }.sorted()
        var parsed: [String: ServiceProfile] = [:]
        for name in names {
            let text = try String(contentsOfFile: directory + "/" + name, encoding: .utf8)
            let profile = try ServiceProfile.parse(text)
            XCTAssertEqual(profile.name + ".yaml", name, "a profile's file is named after it")
            parsed[profile.name] = profile
        }
        XCTAssertEqual(Set(parsed.keys), Set(Self.thesisProfiles))

        let work = FileManager.default.temporaryDirectory.appendingPathComponent("shipped-profiles-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        for profile in parsed.values {
            XCTAssertFalse(profile.dependencies.isEmpty, profile.name)
            XCTAssertTrue(
                Set(profile.dependencies.keys).isSubset(of: LabConfiguration.defaultRoles),
                "\(profile.name): every dependency is a role the lab runs: \(profile.dependencies.keys)")
            XCTAssertTrue(Set(profile.targets.keys).isSubset(of: ["web", "daemon", "celery"]), "\(profile.name): \(profile.targets.keys)")
            var addresses: [String: String] = [:]
            for (index, role) in profile.dependencies.keys.sorted().enumerated() { addresses[role] = "10.77.9.\(index + 1)" }
            let renderer = ProfileRenderer(profile: profile, environment: "staging", dependencyAddresses: addresses)
            let secrets = Dictionary(uniqueKeysWithValues: (profile.secrets ?? []).map { ($0, "s3cret-\($0)") })
            for (role, target) in profile.targets {
                for file in target.files {
                    let guest = try renderer.render(file, mode: .guest(secrets: secrets))
                    let preview = try renderer.render(file, mode: .preview)
                    for (dependency, address) in addresses where file.template.contains("{{dependencies.\(dependency).address}}") {
                        XCTAssertTrue(guest.contains(address), "\(profile.name) \(file.path) lacks \(dependency)'s address")
                        XCTAssertTrue(preview.contains(address))
                    }
                    XCTAssertFalse(preview.contains("s3cret-"), "\(profile.name) \(file.path): a secret shows in the preview")
                    if file.template.contains("{{secrets.") {
                        XCTAssertTrue(guest.contains("s3cret-"), "\(profile.name) \(file.path)")
                        XCTAssertTrue(preview.contains(ProfileRenderer.secretMask))
                    }
                    guard let validate = file.validate else { continue }
                    let copy = work.appendingPathComponent("\(profile.name)-\(role)-\(URL(fileURLWithPath: file.path).lastPathComponent)")
                    try guest.write(to: copy, atomically: true, encoding: .utf8)
                    let status = try run(validate.map { $0 == ServiceProfile.filePlaceholder ? copy.path : $0 })
                    XCTAssertEqual(status, 0, "\(profile.name) \(file.path) fails its validate command:\n\(guest)")
                }
            }
        }
    }

    private func run(_ argv: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
