import Foundation
import RemoteShell
import XCTest

@testable import App

/// The per-file history on a guest (issue 13 §4, CFG-5): `GuestConfigFiles`' own scripts, run by
/// this machine's `sh` in a temporary folder the way a guest's shell runs them. Every replace
/// keeps the version it replaced, the last `historyDepth` of them; a revert puts back the one
/// kept under its stamp; an unchanged file adds nothing to the history.
final class ServiceConfigurationHistoryTests: XCTestCase {
    func testTheLastFiveVersionsOfAFileAreKeptBesideIt() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flotilla-history-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/app/settings.py"
        let user = NSUserName()
        let guest = GuestConfigFiles(
            shell: ThisMachineAsGuest(), target: SSHTarget(host: "localhost", user: user, authentication: .password("unused")))
        let first = Date(timeIntervalSince1970: 1_790_000_000)
        let versions = GuestConfigFiles.historyDepth + 3
        for version in 1...versions {
            let changed = try await guest.stage(path, content: "VERSION = \(version)\n", owner: user, mode: "0640")
            XCTAssertTrue(changed)
            let stamp = ConfigApplyStep.stamp(first.addingTimeInterval(Double(version)))
            let replaced = try await guest.replace([path], stamp: stamp)
            XCTAssertEqual(replaced, [path])
        }
        let history = folder + "/app/.flotilla-history"
        let kept = try FileManager.default.contentsOfDirectory(atPath: history).sorted()
        XCTAssertEqual(kept.count, GuestConfigFiles.historyDepth, "\(kept)")
        let keptVersions = try kept.map { try String(contentsOfFile: history + "/" + $0, encoding: .utf8) }
        XCTAssertEqual(
            keptVersions, (versions - GuestConfigFiles.historyDepth..<versions).map { "VERSION = \($0)\n" },
            "the newest earlier versions, the file's first absence and the oldest versions dropped")
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "VERSION = \(versions)\n")

        // Staged again with the same text: nothing replaced, nothing added to the history.
        let same = try await guest.stage(path, content: "VERSION = \(versions)\n", owner: user, mode: "0640")
        XCTAssertFalse(same)
        let unchanged = try await guest.replace([path], stamp: ConfigApplyStep.stamp(first.addingTimeInterval(100)))
        XCTAssertEqual(unchanged, [])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: history).count, GuestConfigFiles.historyDepth)

        // The last replace reverted: the version it replaced is back.
        try await guest.revert([path], stamp: ConfigApplyStep.stamp(first.addingTimeInterval(Double(versions))))
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "VERSION = \(versions - 1)\n")
    }
}
