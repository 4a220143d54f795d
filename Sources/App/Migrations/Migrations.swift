import Fluent
import Vapor

/// Every schema change, in the order it was made. Each folder is one release's changes and
/// each file one change; a released migration is never edited, only followed by a new one.
func registerMigrations(_ app: Application) {
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
    // 002: web security (browser sessions with hashed IDs, API token expiry).
    app.migrations.add(CreateBrowserSessions())
    app.migrations.add(AddAPITokenExpiry())
    // 003: guests reached with the platform's own key, host keys pinned to VMs.
    app.migrations.add(CreatePlatformSSHKeys())
    app.migrations.add(AddVMHostKey())
    app.migrations.add(AddVMPlatformKey())
    // 004: jobs as data (step kinds and parameters, leases, "needs attention").
    app.migrations.add(AddJobStepWork())
    app.migrations.add(AddJobStepLease())
    app.migrations.add(AddJobStepAttentionReason())
    app.migrations.add(CreateJobStepClaimIndex())
    // 005: instances sharing the database, and leader leases of periodic tasks.
    app.migrations.add(CreateInstances())
    app.migrations.add(CreateLeaderLeases())
    // 007: the metrics store (20 s samples, 5-minute and hourly rollups, rollup progress).
    app.migrations.add(CreateVMMetricSamples())
    app.migrations.add(CreateVMMetricRollups())
    app.migrations.add(CreateMetricRollupMarks())
    // 006: the dashboard (reachability history, drift noticed by the inventory feed).
    app.migrations.add(CreateReachabilityChanges())
    app.migrations.add(CreateVMDrifts())
    // 008: users' e-mail, full name and last sign-in; notifications (webhooks, events, delivery queue and log).
    app.migrations.add(AddUserContact())
    app.migrations.add(AddUserLastSignIn())
    app.migrations.add(CreateWebhooks())
    app.migrations.add(CreateNotificationSettings())
    app.migrations.add(CreateNotificationEvents())
    app.migrations.add(CreateNotificationStreams())
    app.migrations.add(CreateNotificationDeliveries())
    app.migrations.add(CreateNotificationAttempts())
    // 009: monitor agents (credentials, reported events and heartbeats) and roles' watched services.
    app.migrations.add(CreateAgentCredentials())
    app.migrations.add(CreateAgentEvents())
    app.migrations.add(CreateAgentStatuses())
    app.migrations.add(CreateRoleMonitors())
    // 011: service configuration (profiles with versions, wizard runs, applied files for drift).
    app.migrations.add(CreateServiceProfiles())
    app.migrations.add(CreateServiceProfileVersions())
    app.migrations.add(CreateConfigurationRuns())
    app.migrations.add(CreateAppliedConfigurationFiles())
    // 010: upgrades (applications per role, rollouts with per-VM outcomes, VMs' releases, bad revisions).
    app.migrations.add(CreateUpgradeApplications())
    app.migrations.add(CreateUpgradeRollouts())
    app.migrations.add(CreateUpgradeRolloutVMs())
    app.migrations.add(CreateUpgradeVMReleases())
    app.migrations.add(CreateUpgradeBadRevisions())
    // 012: upgrade hooks (endpoints with sealed secrets), auto-upgrade switches, bursts waiting for their quiet period.
    app.migrations.add(CreateUpgradeHooks())
    app.migrations.add(CreateAutoUpgrades())
    app.migrations.add(CreatePendingAutoUpgrades())
    // 016: the job queue's changes notified to every instance (PostgreSQL LISTEN/NOTIFY).
    app.migrations.add(CreateJobQueueNotifications())
    // 014: indexes for the retention of agent events, notification events and deliveries.
    app.migrations.add(AddMonitoringRetentionIndexes())
    // 017: each VM's current health, written by the instance leading the sweep for the others.
    app.migrations.add(CreateVMHealthStates())
    // 020: which agent process sent a VM's last heartbeat.
    app.migrations.add(AddAgentStatusInstance())
    // 018: a job step claim in one round trip on PostgreSQL (advisory lock, then the claim).
    app.migrations.add(CreateJobStepClaimFunction())
    // 024: only work left for others wakes other instances (no notification per step's end).
    app.migrations.add(NotifyOnlyWorkLeftForOthers())
}
