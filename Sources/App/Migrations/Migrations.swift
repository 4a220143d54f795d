import Fluent
import Vapor

/// Every schema change, in the order it was made. Each folder is one release's changes and
/// each file one change; a released migration is never edited, only followed by a new one.
func registerMigrations(_ app: Application) {
    app.migrations.add(SessionRecord.migration)
    // 001: the first schema.
    app.migrations.add(CreateUsers())
    app.migrations.add(CreateAPITokens())
    app.migrations.add(CreateLoginFailures())
    app.migrations.add(CreateLogEntries())
    app.migrations.add(CreateVSphereConnections())
    app.migrations.add(CreateRoles())
    app.migrations.add(CreateEnvironments())
    app.migrations.add(CreateVMs())
    app.migrations.add(CreateJobs())
    app.migrations.add(CreateJobSteps())
}
