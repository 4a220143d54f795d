import Foundation

/// The folder holding Flotilla's Leaf views (`Resources/Views`) and static files (`Public`).
///
/// Found without the working directory, which is `/` under systemd and anything at all for a
/// packaged install: `FLOTILLA_RESOURCES_DIR` when set, else next to the program
/// (`<bin>/../share/flotilla`, then `<bin>`), else the checkout the program was built from.
/// The files stay plain files (not SwiftPM resources) so that a template edited in a checkout
/// is live without a rebuild and a package can ship them under `share/`.
public struct ResourceDirectory: Sendable, Equatable {
    public let path: String

    public var viewsDirectory: String { URL(fileURLWithPath: path).appendingPathComponent("Resources/Views").path + "/" }
    public var publicDirectory: String { URL(fileURLWithPath: path).appendingPathComponent("Public").path + "/" }

    /// The first candidate holding both folders; an error naming every place looked in otherwise.
    /// - Parameters:
    ///   - configured: the `FLOTILLA_RESOURCES_DIR` setting; when given, the only candidate.
    ///   - executable: the running program's path (symbolic links resolved).
    ///   - checkout: the repository the program was built from.
    public static func find(
        configured: String?, executable: String? = Self.executablePath,
        checkout: String = Self.checkoutDirectory
    ) throws -> ResourceDirectory {
        let candidates: [String]
        if let configured {
            candidates = [configured]
        } else {
            let programFolder = executable.map { URL(fileURLWithPath: $0).deletingLastPathComponent() }
            candidates = [
                programFolder.map { $0.appendingPathComponent("../share/flotilla").standardizedFileURL.path },
                programFolder?.path,
                checkout,
            ].compactMap { $0 }
        }
        for candidate in candidates {
            let directory = ResourceDirectory(path: candidate)
            if directory.isComplete { return directory }
        }
        let problem =
            configured == nil
            ? "is not set, and no folder with Resources/Views and Public was found in: "
            : "must name a folder with Resources/Views and Public; looked in: "
        throw ConfigError(setting: "FLOTILLA_RESOURCES_DIR", problem: problem + candidates.joined(separator: ", "))
    }

    private var isComplete: Bool {
        [viewsDirectory, publicDirectory].allSatisfy { folder in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) && isDirectory.boolValue
        }
    }

    /// The running program, through any symbolic link (`/usr/bin/flotilla` → `/opt/flotilla/bin/flotilla`).
    public static var executablePath: String? {
        Bundle.main.executableURL?.resolvingSymlinksInPath().path
    }

    /// The checkout this module was built from (this file is Sources/App/Config/ in it).
    public static var checkoutDirectory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().path
    }
}
