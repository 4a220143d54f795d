import ConsoleKit
import Foundation
import Vapor

/// `flotilla logs backup [--kind K]… [--from T] [--to T] [--role R]… [--ip IP]`.
struct LogCommands: AsyncCommandGroup {
    let help = "Work with the audit log"
    var commands: [String: any AnyAsyncCommand] { ["backup": Backup()] }

    struct Backup: AsyncCommand {
        struct Signature: CommandSignature {
            @Option(name: "query", help: "a search as in the URL, e.g. 'kind=login&kind=error&from=2026-01-01T00:00'") var query: String?
        }

        let help = "Write the audit log (or a search of it) to a text file in the backup directory"

        func run(using context: CommandContext, signature: Signature) async throws {
            let app = context.application
            let config = app.flotilla.config
            let search = try LogSearch(query: QueryParameters(signature.query), timeZone: config.displayTimeZone)
            let backup = LogBackup(config: config)
            let (file, count) = try await backup.write(search, by: UserCommands.actor, on: app.db)
            await AuditLog.record(
                .operation, action: "logs.backup", result: .success,
                details: "backed up \(count) entries (\(search.summary)) to \(file.name)",
                by: UserCommands.actor, on: app.db, logger: app.logger)
            context.console.print("Wrote \(count) entries to \((config.backupDirectory as NSString).appendingPathComponent(file.name))")
        }
    }
}
