import Vapor

/// `GET /api/v1/openapi.json`: the API described for people and generators.
/// A test checks it against the registered routes, so it cannot drift.
enum OpenAPIDocument {
    struct Operation {
        var method: HTTPMethod
        var path: String
        var summary: String
        var action: Action
        var request: String? = nil
        var response: String? = nil
        var status: Int = 200
        var query: [String] = []
        var list = false
        /// Also answers `text/event-stream` (server-sent events) when the client asks for it.
        var eventStream = false
        /// The shape of a 503 answer (a system it needs is unavailable), when it is not an Error.
        var unavailableResponse = "Error"
    }

    static let operations: [Operation] = [
        .init(
            method: .POST, path: "/api/v1/login",
            summary: "Sign in (JSON body only); sets the session cookie and answers the session's CSRF token in the X-CSRF-Token header",
            action: .signIn, request: "Credentials", response: "User"),
        .init(method: .POST, path: "/api/v1/logout", summary: "Sign out", action: .signOut, response: "Done"),
        .init(
            method: .GET, path: "/api/v1/users", summary: "List users (q: part of the name, full name or e-mail address)",
            action: .viewUsers, response: "User", query: ["q", "page", "per"], list: true),
        .init(
            method: .POST, path: "/api/v1/users", summary: "Add a user", action: .addUser, request: "NewUser", response: "User", status: 201
        ),
        .init(
            method: .POST, path: "/api/v1/users/me/password", summary: "Change your own password", action: .changeOwnPassword,
            request: "PasswordChange", response: "Done"),
        .init(method: .GET, path: "/api/v1/users/{id}", summary: "Show a user", action: .viewUsers, response: "User"),
        .init(
            method: .PATCH, path: "/api/v1/users/{id}", summary: "Change a user's password or role", action: .editUser,
            request: "UserChanges", response: "User"),
        .init(method: .DELETE, path: "/api/v1/users/{id}", summary: "Delete a user", action: .deleteUser, status: 204),
        .init(
            method: .GET, path: "/api/v1/logs", summary: "Search the audit log (fields combine by intersection)", action: .viewLogs,
            response: "LogEntry", query: ["from", "to", "kind", "role", "ip", "page", "per"], list: true),
        .init(method: .DELETE, path: "/api/v1/logs", summary: "Delete all log entries", action: .deleteLogs, response: "DeletedLogs"),
        .init(
            method: .POST, path: "/api/v1/logs/backup", summary: "Back up the log (or a search of it) to a file", action: .backupLogs,
            response: "Backup", status: 201, query: ["from", "to", "kind", "role", "ip"]),
        .init(method: .GET, path: "/api/v1/tokens", summary: "List your API tokens", action: .manageOwnTokens, response: "TokenList"),
        .init(
            method: .POST, path: "/api/v1/tokens", summary: "Create an API token (shown once)", action: .manageOwnTokens,
            request: "NewToken", response: "Token", status: 201),
        .init(
            method: .DELETE, path: "/api/v1/tokens", summary: "Revoke one of your API tokens", action: .manageOwnTokens,
            request: "TokenReference", status: 204),
        .init(
            method: .DELETE, path: "/api/v1/tokens/{id}", summary: "Revoke one of your API tokens", action: .manageOwnTokens, status: 204),
        .init(
            method: .GET, path: "/api/v1/users/{id}/tokens", summary: "List a user's API tokens", action: .manageUserTokens,
            response: "TokenList"),
        .init(
            method: .DELETE, path: "/api/v1/users/{id}/tokens/{tokenID}", summary: "Revoke a user's API token", action: .manageUserTokens,
            status: 204),
        .init(
            method: .GET, path: "/api/v1/connections", summary: "List vSphere connections", action: .viewSettings,
            response: "ConnectionList"),
        .init(
            method: .POST, path: "/api/v1/connections", summary: "Add a vSphere connection", action: .changeSettings,
            request: "ConnectionInput", response: "Connection", status: 201),
        .init(
            method: .POST, path: "/api/v1/connections/test", summary: "Log in with connection settings and report what vSphere shows",
            action: .changeSettings, request: "ConnectionInput", response: "ConnectionReport"),
        .init(
            method: .GET, path: "/api/v1/connections/{id}/templates", summary: "Templates a connection sees", action: .viewSettings,
            response: "StringList"),
        .init(
            method: .DELETE, path: "/api/v1/connections/{id}", summary: "Delete a vSphere connection no role uses", action: .changeSettings,
            status: 204),
        .init(method: .GET, path: "/api/v1/roles", summary: "List VM roles", action: .viewEnvironments, response: "RoleList"),
        .init(
            method: .POST, path: "/api/v1/roles", summary: "Add a VM role", action: .changeSettings, request: "RoleInput", response: "Role",
            status: 201),
        .init(
            method: .PATCH, path: "/api/v1/roles/{id}", summary: "Change a VM role", action: .changeSettings, request: "RoleInput",
            response: "Role"),
        .init(
            method: .GET, path: "/api/v1/environments", summary: "List environments with their VM counts", action: .viewEnvironments,
            response: "EnvironmentRow", query: ["page", "per"], list: true),
        .init(
            method: .POST, path: "/api/v1/environments", summary: "Add an environment", action: .addEnvironment,
            request: "EnvironmentInput", response: "Environment", status: 201),
        .init(
            method: .POST, path: "/api/v1/environments/power", summary: "Power environments on, off or restart them (a job)",
            action: .powerVM, request: "PowerInput", response: "JobReference", status: 202),
        .init(
            method: .POST, path: "/api/v1/environments/delete", summary: "Delete environments, destroying their VMs first (a job)",
            action: .deleteEnvironment, request: "IDs", response: "JobReference", status: 202),
        .init(
            method: .GET, path: "/api/v1/environments/{id}", summary: "Show an environment and its VMs", action: .viewEnvironments,
            response: "Environment"),
        .init(
            method: .GET, path: "/api/v1/environments/{id}/live", summary: "Power states from vSphere and running services from the guests",
            action: .viewEnvironments, response: "LiveList"),
        .init(
            method: .PATCH, path: "/api/v1/environments/{id}", summary: "Change an environment's description", action: .editEnvironment,
            request: "DescriptionInput", response: "Environment"),
        .init(
            method: .DELETE, path: "/api/v1/environments/{id}", summary: "Delete an environment, destroying its VMs first (a job)",
            action: .deleteEnvironment, response: "JobReference", status: 202),
        .init(
            method: .POST, path: "/api/v1/environments/{id}/vms",
            summary: "Add a VM: clone, configure the guest, wait until it answers (a job)", action: .addVM, request: "VMInput",
            response: "NewVM", status: 202),
        .init(
            method: .POST, path: "/api/v1/blueprints/check", summary: "Expand a blueprint and check it against what exists",
            action: .addEnvironment, request: "BlueprintText", response: "PlannedVMs"),
        .init(
            method: .POST, path: "/api/v1/blueprints/deploy", summary: "Create an environment and all its VMs from a blueprint (one job)",
            action: .addEnvironment, request: "Deploy", response: "Deployment", status: 202),
        .init(
            method: .GET, path: "/api/v1/environments/{id}/blueprint", summary: "A blueprint of an existing environment",
            action: .viewEnvironments, response: "BlueprintText"),
        .init(
            method: .POST, path: "/api/v1/environments/{id}/clone", summary: "Create a new environment shaped like this one (one job)",
            action: .addEnvironment, request: "CloneEnvironment", response: "Deployment", status: 202),
        .init(
            method: .POST, path: "/api/v1/environments/{id}/adopt", summary: "Import existing vSphere VMs into an environment",
            action: .addVM, request: "Adopt", response: "VMList", status: 201),
        .init(method: .GET, path: "/api/v1/vms/{id}", summary: "Show a VM", action: .viewVMs, response: "VM"),
        .init(
            method: .DELETE, path: "/api/v1/vms/{id}", summary: "Destroy a VM and remove its record (a job)", action: .deleteVM,
            response: "JobReference", status: 202),
        .init(
            method: .POST, path: "/api/v1/vms/{id}/power", summary: "Power a VM on, off or restart it (a job)", action: .powerVM,
            request: "PowerInput", response: "JobReference", status: 202),
        .init(
            method: .POST, path: "/api/v1/vms/{id}/password", summary: "Change a VM's password inside the guest (a job)",
            action: .changeVMPassword, request: "VMPassword", response: "JobReference", status: 202),
        .init(
            method: .POST, path: "/api/v1/vms/{id}/network",
            summary: "Change a VM's address inside the guest, rolled back if it does not answer (a job)", action: .changeVMNetwork,
            request: "VMNetwork", response: "JobReference", status: 202),
        .init(
            method: .GET, path: "/api/v1/vms/{id}/metrics",
            summary: "A VM's CPU and memory in percent: 20 s samples up to 6 h, 5-minute rollups for 24 h, hourly for 7 d; null is a gap",
            action: .viewVMMetrics, response: "MetricSeries", query: ["range"]),
        .init(
            method: .GET, path: "/api/v1/vms/{id}/services",
            summary:
                "A VM's watched services as its monitor agent last reported them (state, restarts), the agent's state "
                + "and the latest events",
            action: .viewVMs, response: "VMServices"),
        .init(
            method: .POST, path: "/api/v1/vms/{id}/services/{service}/{action}",
            summary:
                "Start, stop or restart a watched service through the VM's agent (action: start, stop, restart); "
                + "a stopped service is not restarted",
            action: .controlVMServices, response: "VMServices"),
        .init(
            method: .POST, path: "/api/v1/vms/{id}/agent",
            summary: "Install the monitor agent with its role's watched services and a new credential on a VM (a job)",
            action: .configureServices, request: "AgentInstallInput", response: "JobReference", status: 202),
        .init(
            method: .POST, path: "/api/v1/agent/heartbeat",
            summary:
                "A monitor agent's heartbeat (X-Flotilla-Agent: VM id, X-Flotilla-Timestamp, X-Flotilla-Signature: HMAC-SHA256 "
                + "of timestamp, method, path and body with the VM's agent credential)",
            action: .reportAgentStatus, request: "AgentHeartbeat", response: "AgentAnswer"),
        .init(
            method: .POST, path: "/api/v1/agent/events",
            summary:
                "A monitor agent's events, in order, signed like the heartbeat; each (VM, epoch, sequence) is stored once "
                + "and the answer acknowledges the last sequence",
            action: .reportAgentStatus, request: "AgentEvents", response: "AgentAnswer"),
        .init(
            method: .POST, path: "/api/v1/hooks/{format}/{id}",
            summary:
                "A commit for auto-upgrade (format: svn, github, gitlab, gitea, generic), verified by the hook's token "
                + "(X-Flotilla-Token, X-Gitlab-Token) or signature (X-Hub-Signature-256, X-Gitea-Signature, X-Flotilla-Signature "
                + "over timestamp.body); 202 when queued, 404 for an unknown hook",
            action: .receiveUpgradeHook, response: "HookAnswer"),
        .init(
            method: .GET, path: "/api/v1/upgrade-hooks", summary: "List upgrade hooks (their secrets are never shown again)",
            action: .viewUpgrades, response: "UpgradeHookList"),
        .init(
            method: .POST, path: "/api/v1/upgrade-hooks", summary: "Add an upgrade hook (its token or secret is answered once)",
            action: .manageUpgradeHooks, request: "NewUpgradeHook", response: "UpgradeHook", status: 201),
        .init(
            method: .DELETE, path: "/api/v1/upgrade-hooks/{id}", summary: "Delete an upgrade hook", action: .manageUpgradeHooks,
            status: 204),
        .init(
            method: .GET, path: "/api/v1/applications", summary: "The applications of the roles (credentials are never shown)",
            action: .viewUpgrades, response: "ApplicationList"),
        .init(
            method: .PUT, path: "/api/v1/roles/{id}/application", summary: "Set a role's application (repository, deploy, health check)",
            action: .changeSettings, request: "ApplicationInput", response: "Application"),
        .init(
            method: .DELETE, path: "/api/v1/roles/{id}/application", summary: "Remove a role's application", action: .changeSettings,
            status: 204),
        .init(
            method: .GET, path: "/api/v1/upgrades/vms",
            summary: "VMs with an application: current, previous and target revision, drift (drift=1: drifting only)",
            action: .viewUpgrades, response: "UpgradeVM", query: ["environment", "vmRole", "q", "drift", "page", "per"], list: true),
        .init(
            method: .POST, path: "/api/v1/upgrades",
            summary:
                "Roll a revision out to an environment (or chosen VMs): stage everywhere, then canary and batches behind the health gate",
            action: .upgradeVM, request: "UpgradeInput", response: "UpgradeStarted", status: 202),
        .init(
            method: .POST, path: "/api/v1/upgrades/rollback",
            summary: "Fast-track rollback of VMs (or an environment) to their previous or a kept release; marks the revision left bad",
            action: .upgradeVM, request: "RollbackInput", response: "JobReference", status: 202),
        .init(
            method: .GET, path: "/api/v1/dashboard",
            summary: "Total VMs and, per role, how many are reachable, unreachable or being checked",
            action: .viewDashboard, response: "DashboardSummary"),
        .init(
            method: .GET, path: "/api/v1/dashboard/events",
            summary:
                "Server-sent events: summary, change (one VM's new health; the id is its sequence) and reload; resumes after "
                + "Last-Event-ID or since; followed with Accept: text/event-stream, otherwise the snapshot alone",
            action: .viewDashboard, response: "HealthChange", query: ["since"], eventStream: true),
        .init(
            method: .GET, path: "/api/v1/vms",
            summary: "VMs of every environment with their live health (q: name fuzzily, IP or role; role; environment)",
            action: .viewVMs, response: "VMListing", query: ["q", "vmRole", "environment", "page", "per"], list: true),
        .init(
            method: .POST, path: "/api/v1/vms/power", summary: "Power a selection of VMs on, off or restart them (one job)",
            action: .powerVM, request: "BatchPower", response: "JobReference", status: 202),
        .init(
            method: .GET, path: "/api/v1/vms/{id}/reachability", summary: "A VM's health changes, newest first", action: .viewVMs,
            response: "ReachabilityChange", query: ["page", "per"], list: true),
        .init(
            method: .GET, path: "/api/v1/vms/{id}/drift", summary: "What changed on a VM outside Flotilla, newest first",
            action: .viewVMs, response: "Drift", query: ["page", "per"], list: true),
        .init(
            method: .PUT, path: "/api/v1/vms/{id}/notes", summary: "Replace a VM's notes", action: .editVMNotes, request: "Notes",
            response: "VM"),
        .init(
            method: .GET, path: "/api/v1/jobs", summary: "Job history, newest first", action: .viewJobs, response: "Job",
            query: ["page", "per", "status", "jobKind"], list: true),
        .init(method: .GET, path: "/api/v1/jobs/{id}", summary: "A job with its steps and their logs", action: .viewJobs, response: "Job"),
        .init(method: .POST, path: "/api/v1/jobs/{id}/cancel", summary: "Cancel a job", action: .cancelJob, response: "Job"),
        .init(
            method: .GET, path: "/api/v1/ssh-keys", summary: "The platform's SSH keys (public halves) and how many VMs trust each",
            action: .viewSettings, response: "SSHKeyList"),
        .init(
            method: .POST, path: "/api/v1/ssh-keys/rotate",
            summary: "Make a new platform SSH key and move every VM to it (a job, one step per VM)", action: .rotateSSHKeys,
            response: "SSHKeyRotation", status: 202),
        .init(
            method: .GET, path: "/api/v1/instances",
            summary: "The Flotilla instances sharing the database: heartbeats, steps running, periodic tasks led",
            action: .viewInstances, response: "InstanceList"),
        .init(
            method: .GET, path: "/api/v1/health",
            summary: "For load balancers: 200 when this instance reaches the database, else 503 with status \"database unavailable\"",
            action: .checkHealth, response: "Health", unavailableResponse: "Health"),
        .init(
            method: .GET, path: "/api/v1/notifications/settings", summary: "Notification settings and delivery health",
            action: .viewNotifications, response: "NotificationSettings"),
        .init(
            method: .PATCH, path: "/api/v1/notifications/settings", summary: "Change the rate-limit window (one message per service)",
            action: .manageNotifications, request: "NotificationSettingsChange", response: "NotificationSettings"),
        .init(
            method: .POST, path: "/api/v1/notifications/test-mail", summary: "Queue a test mail (to the given address, or your own)",
            action: .manageNotifications, request: "TestMail", response: "Delivery", status: 202),
        .init(
            method: .GET, path: "/api/v1/notifications/deliveries", summary: "The delivery log, newest first, with every attempt",
            action: .viewNotifications, response: "Delivery", query: ["channel", "deliveryStatus", "deliveryKind", "page", "per"],
            list: true),
        .init(
            method: .GET, path: "/api/v1/notifications/deliveries/{id}", summary: "One delivery with its attempts",
            action: .viewNotifications, response: "Delivery"),
        .init(method: .GET, path: "/api/v1/webhooks", summary: "List webhooks", action: .viewNotifications, response: "WebhookList"),
        .init(
            method: .POST, path: "/api/v1/webhooks", summary: "Add a webhook (its signing secret is answered once)",
            action: .manageNotifications, request: "NewWebhook", response: "Webhook", status: 201),
        .init(method: .DELETE, path: "/api/v1/webhooks/{id}", summary: "Delete a webhook", action: .manageNotifications, status: 204),
        .init(
            method: .POST, path: "/api/v1/webhooks/{id}/test", summary: "Queue a signed test request to a webhook",
            action: .manageNotifications, response: "Delivery", status: 202),
        .init(
            method: .GET, path: "/api/v1/service-profiles", summary: "List service profiles (SPEC CFG-1)",
            action: .viewServiceConfiguration, response: "ServiceProfileList"),
        .init(
            method: .POST, path: "/api/v1/service-profiles",
            summary: "Add a service profile from its YAML (secret values sealed, never answered)", action: .configureServices,
            request: "ServiceProfileInput", response: "ServiceProfile", status: 201),
        .init(
            method: .GET, path: "/api/v1/service-profiles/{id}", summary: "Show a profile's current version",
            action: .viewServiceConfiguration, response: "ServiceProfile"),
        .init(
            method: .PATCH, path: "/api/v1/service-profiles/{id}", summary: "Save a new version and/or set secret values",
            action: .configureServices, request: "ServiceProfileInput", response: "ServiceProfile"),
        .init(method: .DELETE, path: "/api/v1/service-profiles/{id}", summary: "Delete a profile", action: .configureServices, status: 204),
        .init(
            method: .GET, path: "/api/v1/service-profiles/{id}/versions", summary: "A profile's versions, newest first",
            action: .viewServiceConfiguration, response: "ServiceProfileVersionList"),
        .init(
            method: .GET, path: "/api/v1/service-profiles/{id}/versions/{version}", summary: "One version of a profile",
            action: .viewServiceConfiguration, response: "ServiceProfile"),
        .init(
            method: .GET, path: "/api/v1/service-profiles/{id}/options",
            summary: "The wizard's choices for a profile in an environment: VMs per dependency and target role",
            action: .viewServiceConfiguration, response: "ConfigurationOptions", query: ["environment"]),
        .init(
            method: .POST, path: "/api/v1/configuration-runs",
            summary: "Start the wizard: a profile, an environment, one VM per dependency role", action: .configureServices,
            request: "NewConfigurationRun", response: "ConfigurationRun", status: 201),
        .init(
            method: .GET, path: "/api/v1/configuration-runs/{id}", summary: "A wizard run and its last check's verdict",
            action: .viewServiceConfiguration, response: "ConfigurationRun"),
        .init(
            method: .POST, path: "/api/v1/configuration-runs/{id}/check",
            summary: "Check the dependencies from the platform and from each target VM (SPEC CFG-2)", action: .configureServices,
            request: "ConfigurationTargets", response: "DependencyCheckReport"),
        .init(
            method: .POST, path: "/api/v1/configuration-runs/{id}/preview",
            summary: "Per target VM and file, the diff against the guest's file now (secrets masked)", action: .configureServices,
            request: "ConfigurationTargets", response: "ConfigurationPreviewList"),
        .init(
            method: .POST, path: "/api/v1/configuration-runs/{id}/configure",
            summary: "Configure the target VMs (a job; only after a passed check); one failed VM can be configured again alone",
            action: .configureServices, request: "ConfigurationTargets", response: "JobReference", status: 202),
        .init(
            method: .POST, path: "/api/v1/configuration-drift", summary: "Compare the guests' files with what was last applied",
            action: .configureServices, request: "DriftRequest", response: "DriftList"),
        .init(method: .GET, path: "/api/v1/openapi.json", summary: "This document", action: .readAPIDocument, response: "APIDocument"),
    ]

    /// Path parameters that are not IDs (every other one is a UUID).
    private static var pathParameters: [String: [String: Any]] {
        [
            "format": ["type": "string", "enum": UpgradeHookFormat.allCases.map(\.rawValue)],
            "service": ["type": "string", "description": "a watched service's name"],
            "action": ["type": "string", "enum": ServiceAction.allCases.map(\.rawValue)],
            "version": ["type": "integer", "minimum": 1],
        ]
    }

    private static var queryParameters: [String: [String: Any]] {
        [
            "page": ["schema": ["type": "integer", "minimum": 1], "description": "page number, from 1"],
            "per": ["schema": ["type": "integer", "enum": PageRequest.sizes], "description": "page size"],
            "from": ["schema": ["type": "string"], "description": "ISO 8601 time, or YYYY-MM-DDTHH:MM in the display time zone"],
            "to": ["schema": ["type": "string"], "description": "ISO 8601 time, or YYYY-MM-DDTHH:MM in the display time zone"],
            "kind": [
                "schema": ["type": "array", "items": ["type": "string", "enum": LogKind.allCases.map(\.rawValue)]],
                "style": "form", "explode": true, "description": "repeatable",
            ],
            "role": [
                "schema": ["type": "array", "items": ["type": "string"]], "style": "form", "explode": true,
                "description": "VM role, repeatable",
            ],
            "ip": ["schema": ["type": "string"], "description": "operator IP address"],
            "q": ["schema": ["type": "string"], "description": "search text"],
            "drift": ["schema": ["type": "string", "enum": ["0", "1"]], "description": "1: only VMs off their target revision"],
            "vmRole": ["name": "role", "schema": ["type": "string"], "description": "VM role"],
            "environment": ["schema": ["type": "string", "format": "uuid"], "description": "environment ID"],
            "since": ["schema": ["type": "integer"], "description": "the sequence of the summary the client already has"],
            "channel": ["schema": ["type": "string", "enum": NotificationChannel.allCases.map(\.rawValue)]],
            "deliveryStatus": ["name": "status", "schema": ["type": "string", "enum": DeliveryStatus.allCases.map(\.rawValue)]],
            "deliveryKind": [
                "name": "kind", "schema": ["type": "string"], "description": "an event kind (restarted, gave_up…), digest or test",
            ],
            "range": [
                "schema": ["type": "string", "enum": MetricRange.allCases.map(\.rawValue)],
                "description": "the window ending now (default \(MetricRange.standard.rawValue))",
            ],
            "status": [
                "schema": ["type": "array", "items": ["type": "string", "enum": JobStatus.allCases.map(\.rawValue)]],
                "style": "form", "explode": true, "description": "job status, repeatable",
            ],
            "jobKind": [
                "name": "kind", "schema": ["type": "array", "items": ["type": "string"]], "style": "form", "explode": true,
                "description": "job kind, e.g. vm.create, repeatable",
            ],
        ]
    }

    private static func string(_ description: String? = nil) -> [String: Any] {
        var schema: [String: Any] = ["type": "string"]
        if let description { schema["description"] = description }
        return schema
    }

    /// Closed: a field the document does not name is a mismatch (APIContractTests, schemathesis).
    private static func object(_ properties: [String: [String: Any]], required: [String]) -> [String: Any] {
        ["type": "object", "properties": properties, "required": required, "additionalProperties": false]
    }

    private static func nullableNumbers(_ description: String) -> [String: Any] {
        ["type": "array", "items": ["type": "number", "nullable": true], "description": description]
    }

    private static var schemas: [String: Any] {
        [
            "Credentials": object(["username": string(), "password": string()], required: ["username", "password"]),
            "User": object(
                [
                    "id": string("UUID"), "username": string(), "role": ["type": "string", "enum": ["system", "ordinary"]],
                    "email": string(), "fullName": string(), "createdAt": string("ISO 8601"), "lastSignInAt": string("ISO 8601"),
                ], required: ["id", "username", "role"]),
            "NewUser": object(
                [
                    "username": string(), "password": string(), "passwordConfirmation": string(),
                    "role": ["type": "string", "enum": ["system", "ordinary"]], "email": string(), "fullName": string(),
                ],
                required: ["username", "password", "passwordConfirmation", "role"]),
            "UserChanges": object(
                [
                    "password": string("blank or absent keeps the old one"), "passwordConfirmation": string(),
                    "role": ["type": "string", "enum": ["system", "ordinary"]],
                    "email": string("absent keeps it, blank removes it"), "fullName": string("absent keeps it, blank removes it"),
                ], required: []),
            "PasswordChange": object(
                ["currentPassword": string(), "password": string(), "passwordConfirmation": string()],
                required: ["currentPassword", "password", "passwordConfirmation"]),
            "LogEntry": object(
                [
                    "id": ["type": "integer"], "kind": ["type": "string", "enum": LogKind.allCases.map(\.rawValue)],
                    "time": string("ISO 8601, UTC"), "vmName": string(), "vmRole": string(), "operator": string(),
                    "operatorIP": string(), "action": string(), "result": string(), "details": string(),
                ],
                required: ["id", "kind", "time", "action", "result", "details"]),
            "DeletedLogs": object(["deleted": ["type": "integer"]], required: ["deleted"]),
            "Backup": object(
                ["name": string(), "entries": ["type": "integer"], "size": ["type": "integer"]], required: ["name", "entries", "size"]),
            "NewToken": object(
                [
                    "name": string(),
                    "expiresInDays": [
                        "type": "integer", "minimum": 1, "maximum": APITokens.maximumLifetimeDays,
                        "description": "absent: valid until revoked",
                    ],
                ], required: ["name"]),
            "TokenReference": object(["id": string("UUID")], required: ["id"]),
            "Token": object(
                [
                    "id": string("UUID"), "name": string(), "createdAt": string(), "lastUsedAt": string("recorded at most once a minute"),
                    "expiresAt": string("absent: valid until revoked"),
                    "token": string("the secret; only in the answer that creates it"),
                ], required: ["id", "name"]),
            "TokenList": ["type": "array", "items": ["$ref": "#/components/schemas/Token"]],
            "Done": object(["ok": ["type": "boolean"]], required: ["ok"]),
            "StringList": ["type": "array", "items": string()],
            "LiveList": [
                "type": "array",
                "items": object(
                    [
                        "id": string("VM UUID"), "powerState": string(), "servicesError": string(),
                        "services": [
                            "type": "array",
                            "items": object(["name": string(), "running": ["type": "boolean"]], required: ["name", "running"]),
                        ],
                    ], required: ["id"]),
            ],
            "ConnectionInput": object(
                [
                    "name": string(), "url": string("https://host/sdk"), "username": string(), "password": string(),
                    "thumbprint": string("SHA-256 of the server certificate, to pin a self-signed one"),
                    "datacenter": string(), "vmFolder": string(), "resourcePool": string(), "datastore": string(), "network": string(),
                ],
                required: ["name", "url", "username", "password"]),
            "Connection": object(
                [
                    "id": string("UUID"), "name": string(), "url": string(), "username": string(), "thumbprint": string(),
                    "datacenter": string(), "vmFolder": string(), "resourcePool": string(), "datastore": string(), "network": string(),
                ],
                required: ["id", "name", "url", "username"]),
            "ConnectionList": ["type": "array", "items": ["$ref": "#/components/schemas/Connection"]],
            "ConnectionReport": object(
                [
                    "product": string(), "apiType": string(), "apiVersion": string(),
                    "datacenters": ["type": "array", "items": string()], "templates": ["type": "array", "items": string()],
                ],
                required: ["product", "apiType", "apiVersion", "datacenters", "templates"]),
            "RoleInput": object(
                [
                    "name": string(), "connectionID": string("UUID"), "template": string(), "cpus": ["type": "integer"],
                    "memoryMB": ["type": "integer"], "sshUser": string(), "services": string("process names, comma-separated"),
                    "monitor": ["type": "array", "items": ["$ref": "#/components/schemas/MonitoredService"]],
                ],
                required: ["name", "connectionID", "template"]),
            "Role": object(
                [
                    "id": string("UUID"), "name": string(), "connectionID": string("UUID"), "template": string(),
                    "cpus": ["type": "integer"],
                    "memoryMB": ["type": "integer"], "sshUser": string(), "networkStyle": string(),
                    "services": ["type": "array", "items": string()],
                    "monitor": ["type": "array", "items": ["$ref": "#/components/schemas/MonitoredService"]],
                ], required: ["id", "name", "connectionID", "template", "monitor"]),
            "MonitoredService": object(
                [
                    "name": string(), "process": string("process name (one of process, pidfile, unit)"), "pidfile": string("absolute path"),
                    "unit": string("systemd unit"), "start": string("shell command"), "stop": string("shell command"),
                    "probe": object(
                        [
                            "tcp": string("host:port"), "http": string("URL"), "status": ["type": "integer"], "command": string(),
                            "timeoutSeconds": ["type": "number"],
                        ], required: []),
                    "attempts": ["type": "integer"], "graceSeconds": ["type": "integer"],
                    "owners": ["type": "array", "items": string("user UUID")],
                ], required: ["name", "attempts", "graceSeconds", "owners"]),
            "AgentHeartbeat": object(
                [
                    "vm": string("UUID"), "agent_version": string(), "sent_at": ["type": "number"], "queued_events": ["type": "integer"],
                    "services": ["type": "array", "items": ["$ref": "#/components/schemas/AgentServiceState"]],
                    "instance": string("hex, new at each start of the agent process"),
                ], required: ["vm", "agent_version", "sent_at", "queued_events", "services"]),
            "AgentServiceState": object(
                [
                    "name": string(), "state": string("unknown, running, down, starting, gave_up, stopped"),
                    "restarts": ["type": "integer"], "failures": ["type": "integer"], "attempts": ["type": "integer"],
                    "since": ["type": "number"],
                ], required: ["name", "state", "restarts", "failures", "attempts", "since"]),
            "AgentEvents": object(
                [
                    "vm": string("UUID"),
                    "events": [
                        "type": "array",
                        "items": object(
                            [
                                "kind": string("restarted, recovered, gave_up, recovered_from_giving_up"), "service": string(),
                                "attempts": ["type": "integer"], "outage_started_at": ["type": "number"],
                                "occurred_at": ["type": "number"], "sequence": ["type": "integer"], "epoch": string("hex"),
                            ], required: ["kind", "service", "attempts", "occurred_at", "sequence", "epoch"]),
                    ],
                ], required: ["vm", "events"]),
            "AgentAnswer": object(["acknowledged": ["type": "integer"]], required: []),
            "HookAnswer": object(["result": string(), "queued": ["type": "integer"]], required: ["result", "queued"]),
            "NewUpgradeHook": object(
                [
                    "format": ["type": "string", "enum": ["svn", "github", "gitlab", "gitea", "generic"]],
                    "repositoryURL": string("the Git URL, or the SVN URL applications' URLs lie under"),
                ], required: ["format", "repositoryURL"]),
            "UpgradeHook": object(
                [
                    "id": string("UUID"), "format": string(), "repositoryURL": string(), "endpoint": string("where the sender posts"),
                    "postCommitLine": string("SVN: the line for hooks/post-commit"), "createdBy": string(),
                    "createdAt": string("ISO 8601"), "lastDeliveryAt": string("ISO 8601"), "lastResult": string(),
                    "secret": string("only in the answer that creates it"),
                ], required: ["id", "format", "repositoryURL", "endpoint"]),
            "UpgradeHookList": ["type": "array", "items": ["$ref": "#/components/schemas/UpgradeHook"]],
            "AgentInstallInput": object(["platformURL": string("http(s) URL the VM reaches the platform at")], required: ["platformURL"]),
            "VMServices": object(
                [
                    "agent": object(
                        [
                            "state": string("not installed, reporting, silent"), "lastHeartbeatAt": string("ISO 8601"),
                            "silentSince": string("ISO 8601"), "version": string(), "queuedEvents": ["type": "integer"],
                        ], required: ["state"]),
                    "services": [
                        "type": "array",
                        "items": object(
                            [
                                "name": string(), "state": string(), "restarts": ["type": "integer"], "failures": ["type": "integer"],
                                "attempts": ["type": "integer"], "since": string("ISO 8601"),
                            ], required: ["name", "state", "restarts", "failures", "attempts", "since"]),
                    ],
                    "events": [
                        "type": "array",
                        "items": object(
                            [
                                "kind": string(), "service": string(), "attempts": ["type": "integer"],
                                "outageStartedAt": string("ISO 8601"), "occurredAt": string("ISO 8601"),
                            ], required: ["kind", "service", "attempts", "occurredAt"]),
                    ],
                    "canControl": ["type": "boolean"],
                ], required: ["agent", "services", "events", "canControl"]),
            "RoleList": ["type": "array", "items": ["$ref": "#/components/schemas/Role"]],
            "EnvironmentInput": object(["name": string(), "description": string()], required: ["name"]),
            "DescriptionInput": object(["description": string()], required: ["description"]),
            "EnvironmentRow": object(
                ["id": string("UUID"), "name": string(), "description": string(), "vmCount": ["type": "integer"]],
                required: ["id", "name", "description", "vmCount"]),
            "Environment": object(
                [
                    "id": string("UUID"), "name": string(), "description": string(),
                    "vms": ["type": "array", "items": ["$ref": "#/components/schemas/VM"]],
                ], required: ["id", "name", "description", "vms"]),
            "PowerInput": object(
                [
                    "action": ["type": "string", "enum": ["on", "off", "restart"]],
                    "ids": ["type": "array", "items": string("environment UUID")],
                ], required: ["action"]),
            "IDs": object(["ids": ["type": "array", "items": string("UUID")]], required: ["ids"]),
            "VMPassword": object(
                ["password": string(), "passwordConfirmation": string()], required: ["password", "passwordConfirmation"]),
            "VMNetwork": object(
                ["ip": string(), "netmask": string(), "gateway": string(), "dns1": string(), "dns2": string()],
                required: ["ip", "netmask", "gateway"]),
            "BlueprintText": object(
                [
                    "blueprint": string(
                        "YAML: name, description, roles {role: count}, network {range, netmask, gateway, dns}, names, password (shared|generated)"
                    )
                ], required: ["blueprint"]),
            "PlannedVMs": [
                "type": "array",
                "items": object(["hostName": string(), "ip": string(), "role": string()], required: ["hostName", "ip", "role"]),
            ],
            "Deploy": object(
                ["blueprint": string("YAML"), "password": string("for password: shared"), "passwordConfirmation": string()],
                required: ["blueprint"]),
            "Deployment": object(
                ["environmentID": string("UUID"), "jobID": string("UUID"), "vms": ["type": "integer"]],
                required: ["environmentID", "jobID", "vms"]),
            "CloneEnvironment": object(
                ["name": string(), "range": string("FIRST-LAST"), "password": string(), "passwordConfirmation": string()],
                required: ["name", "range"]),
            "Adopt": object(
                [
                    "connectionID": string("UUID"), "names": ["type": "array", "items": string()], "role": string(),
                    "password": string("the guests' SSH password"),
                ], required: ["connectionID", "names", "role", "password"]),
            "VMList": ["type": "array", "items": ["$ref": "#/components/schemas/VM"]],
            "JobReference": object(["jobID": string("UUID")], required: ["jobID"]),
            "Application": object(
                [
                    "id": string("UUID"), "roleID": string("UUID"), "roleName": string(),
                    "repositoryKind": ["type": "string", "enum": ["git", "svn"]], "repositoryURL": string(), "branch": string(),
                    "hasCredentials": ["type": "boolean"], "deployDirectory": string(), "buildCommand": string(),
                    "restartCommand": string(),
                    "healthKind": ["type": "string", "enum": ["http", "command", "services"]], "healthTarget": string(),
                    "healthTimeoutSeconds": ["type": "integer"], "releasesKept": ["type": "integer"],
                ],
                required: [
                    "id", "roleID", "roleName", "repositoryKind", "repositoryURL", "hasCredentials", "deployDirectory", "restartCommand",
                    "healthKind", "healthTarget", "healthTimeoutSeconds", "releasesKept",
                ]),
            "ApplicationList": ["type": "array", "items": ["$ref": "#/components/schemas/Application"]],
            "ApplicationInput": object(
                [
                    "repositoryKind": ["type": "string", "enum": ["git", "svn"]], "repositoryURL": string(), "branch": string("Git only"),
                    "username": string("absent keeps the stored credentials, blank removes them"), "password": string(),
                    "deployDirectory": string("absolute path"), "buildCommand": string(), "restartCommand": string(),
                    "healthKind": ["type": "string", "enum": ["http", "command", "services"]],
                    "healthTarget": string("URL fetched on the guest, or a command run in the current release"),
                    "healthTimeoutSeconds": ["type": "integer"], "releasesKept": ["type": "integer"],
                ], required: ["repositoryKind", "repositoryURL", "deployDirectory", "restartCommand", "healthKind"]),
            "UpgradeVM": object(
                [
                    "vmID": string("UUID"), "name": string(), "ip": string(), "role": string(), "environmentID": string("UUID"),
                    "environment": string(), "applicationID": string("UUID"), "currentRevision": string(), "previousRevision": string(),
                    "currentRelease": string(), "targetRevision": string(), "drift": ["type": "boolean"],
                ], required: ["vmID", "name", "ip", "role", "environmentID", "environment", "applicationID", "drift"]),
            "UpgradeInput": object(
                [
                    "applicationID": string("UUID"), "environmentID": string("UUID"),
                    "revision": string("Git commit id, tag or branch; SVN revision number"),
                    "vmIDs": ["type": "array", "items": ["type": "string"]], "canary": string("VMs (1) or percentage (10%)"),
                    "batchSize": string("VMs (5) or percentage (25%)"), "pauseSeconds": ["type": "integer"],
                    "allowBadRevision": ["type": "boolean"],
                ], required: ["applicationID", "environmentID", "revision"]),
            "UpgradeStarted": object(
                [
                    "rolloutID": string("UUID"), "jobID": string("UUID"), "revision": string("the resolved revision"),
                    "requestedRevision": string(), "vmCount": ["type": "integer"],
                    "fetchedBytes": ["type": "integer", "description": "tarball fetched from the repository (0: already fetched)"],
                ], required: ["rolloutID", "jobID", "revision", "requestedRevision", "vmCount", "fetchedBytes"]),
            "RollbackInput": object(
                [
                    "applicationID": string("UUID"), "vmIDs": ["type": "array", "items": ["type": "string"]],
                    "environmentID": string("UUID: every VM of the role there, when vmIDs is absent"),
                    "revision": string("absent: each VM's previous release"),
                ], required: ["applicationID"]),
            "SSHKey": object(
                [
                    "id": string("UUID"), "fingerprint": string(), "publicKey": string("OpenSSH authorized_keys line"),
                    "createdAt": string("ISO 8601"), "retiredAt": string("ISO 8601"), "active": ["type": "boolean"],
                    "vms": ["type": "integer"],
                ], required: ["id", "fingerprint", "publicKey", "active", "vms"]),
            "SSHKeyList": ["type": "array", "items": ["$ref": "#/components/schemas/SSHKey"]],
            "SSHKeyRotation": object(
                ["key": ["$ref": "#/components/schemas/SSHKey"], "jobID": string("UUID")], required: ["key", "jobID"]),
            "Instance": object(
                [
                    "id": string("UUID, new at every start"), "address": string("host:port"), "version": string(),
                    "startedAt": string("ISO 8601"), "lastHeartbeatAt": string("ISO 8601"), "stoppedAt": string("ISO 8601"),
                    "state": ["type": "string", "enum": ["running", "silent", "stopped"]],
                    "stepsRunning": ["type": "integer"], "leads": ["type": "array", "items": string("periodic task name")],
                    "answering": ["type": "boolean", "description": "whether this instance answered the request"],
                ],
                required: ["id", "address", "version", "startedAt", "lastHeartbeatAt", "state", "stepsRunning", "leads", "answering"]),
            "InstanceList": ["type": "array", "items": ["$ref": "#/components/schemas/Instance"]],
            "Health": object(
                ["status": string("ok"), "instance": string("UUID of the instance that answered")], required: ["status", "instance"]),
            "VMInput": object(
                [
                    "hostName": string(), "ip": string("IPv4"), "netmask": string("prefix length or dotted netmask"),
                    "gateway": string(), "dns1": string(), "dns2": string(), "role": string(), "password": string(),
                    "passwordConfirmation": string(), "notes": string(),
                ],
                required: ["hostName", "ip", "netmask", "gateway", "role", "password", "passwordConfirmation"]),
            "VM": object(
                [
                    "id": string("UUID"), "environmentID": string("UUID"), "hostName": string(), "ip": string(),
                    "prefixLength": ["type": "integer"],
                    "gateway": string(), "dns1": string(), "dns2": string(), "role": string(),
                    "status": ["type": "string", "enum": ["provisioning", "ready", "failed", "missing"]], "statusReason": string(),
                    "powerState": string(), "guestOS": string(), "cpus": ["type": "integer"], "memoryMB": ["type": "integer"],
                    "diskGB": ["type": "number"], "notes": string(), "vsphereReference": string(),
                ],
                required: ["id", "environmentID", "hostName", "ip", "role", "status"]),
            "DashboardSummary": object(
                [
                    "total": ["type": "integer"], "reachable": ["type": "integer"], "unreachable": ["type": "integer"],
                    "checking": ["type": "integer"], "sequence": ["type": "integer"],
                    "roles": ["type": "array", "items": ["$ref": "#/components/schemas/RoleCount"]],
                ], required: ["total", "reachable", "unreachable", "checking", "roles", "sequence"]),
            "RoleCount": object(
                [
                    "role": string(), "total": ["type": "integer"], "reachable": ["type": "integer"],
                    "unreachable": ["type": "integer"], "checking": ["type": "integer"],
                ], required: ["role", "total", "reachable", "unreachable", "checking"]),
            "HealthChange": object(
                [
                    "sequence": ["type": "integer"], "vmID": string("UUID"), "role": string(),
                    "health": ["type": "string", "enum": VMHealth.allCases.map(\.rawValue)],
                    "previous": ["type": "string", "enum": VMHealth.allCases.map(\.rawValue)], "label": string(), "reason": string(),
                    "reachable": ["type": "boolean"],
                    "at": string("ISO 8601"),
                ], required: ["sequence", "vmID", "role", "health", "previous", "label", "reason", "reachable", "at"]),
            "VMListing": object(
                [
                    "id": string("UUID"), "hostName": string(), "ip": string(), "role": string(), "environmentID": string("UUID"),
                    "environment": string(), "status": string(), "powerState": string(), "guestOS": string(),
                    "cpus": ["type": "integer"], "memoryMB": ["type": "integer"], "diskGB": ["type": "number"], "notes": string(),
                    "health": string("a health (up, poweredOff…) or, for VMs not watched, the record's status"),
                    "healthLabel": string(), "reason": string(), "reachable": ["type": "boolean"],
                ], required: ["id", "hostName", "ip", "role", "environmentID", "environment", "status", "notes", "health", "reason"]),
            "BatchPower": object(
                ["vms": ["type": "array", "items": string("UUID")], "action": ["type": "string", "enum": ["on", "off", "restart"]]],
                required: ["vms", "action"]),
            "ReachabilityChange": object(
                [
                    "health": ["type": "string", "enum": VMHealth.allCases.map(\.rawValue)],
                    "previous": ["type": "string", "enum": VMHealth.allCases.map(\.rawValue)], "reason": string(), "at": string("ISO 8601"),
                ],
                required: ["health", "previous", "reason", "at"]),
            "Drift": object(
                [
                    "field": ["type": "string", "enum": ["cpus", "memoryMB", "diskGB", "name", "address"]],
                    "recorded": string("Flotilla's record"), "observed": string("what vSphere reports"), "at": string("ISO 8601"),
                ], required: ["field", "recorded", "observed", "at"]),
            "Notes": object(["notes": string("at most 2000 characters")], required: ["notes"]),
            "MetricSeries": object(
                [
                    "vmID": string("UUID"), "range": string(), "stepSeconds": ["type": "integer"],
                    "start": string("ISO 8601, the first bucket"), "points": ["type": "integer"], "unit": string("percent"),
                    "cpu": ["$ref": "#/components/schemas/MetricBand"], "memory": ["$ref": "#/components/schemas/MetricBand"],
                ], required: ["vmID", "range", "stepSeconds", "start", "points", "unit", "cpu", "memory"]),
            "MetricBand": object(
                [
                    "avg": nullableNumbers("average per bucket"),
                    "min": nullableNumbers("minimum per bucket (rollups only)"),
                    "max": nullableNumbers("maximum per bucket (rollups only)"),
                ], required: ["avg"]),
            "NewVM": object(["vm": ["$ref": "#/components/schemas/VM"], "jobID": string("UUID")], required: ["vm", "jobID"]),
            "Job": object(
                [
                    "id": string("UUID"), "kind": string(), "title": string(),
                    "status": ["type": "string", "enum": JobStatus.allCases.map(\.rawValue)], "summary": string(), "operator": string(),
                    "operatorIP": string(), "createdAt": string(), "startedAt": string(), "finishedAt": string(),
                    "steps": [
                        "type": "array",
                        "items": object(
                            [
                                "position": ["type": "integer"], "title": string(), "vmName": string(),
                                "status": string(), "attempts": ["type": "integer"], "log": string(), "kind": string(),
                                "attentionReason": string(), "startedAt": string("ISO 8601"), "finishedAt": string("ISO 8601"),
                            ],
                            required: ["position", "title", "status", "attempts", "log"]),
                    ],
                ],
                required: ["id", "kind", "title", "status", "summary"]),
            "NotificationSettings": object(
                [
                    "rateLimitSeconds": ["type": "integer"], "mailServer": string("absent: mail is not configured"),
                    "queued": ["type": "integer"], "failed": ["type": "integer"], "lastFailure": string(), "lastFailureAt": string(),
                ], required: ["rateLimitSeconds", "queued", "failed"]),
            "NotificationSettingsChange": object(
                [
                    "rateLimitSeconds": [
                        "type": "integer", "minimum": NotificationSettings.rateLimitRange.lowerBound,
                        "maximum": NotificationSettings.rateLimitRange.upperBound,
                    ]
                ], required: ["rateLimitSeconds"]),
            "TestMail": object(["to": string("absent: your own address")], required: []),
            "NewWebhook": object(
                ["name": string(), "url": string("http:// or https://, without user name or password")], required: ["name", "url"]),
            "Webhook": object(
                [
                    "id": string("UUID"), "name": string(), "url": string(), "createdAt": string(),
                    "secret": string(
                        "only in the answer that creates it; requests carry X-Flotilla-Timestamp and X-Flotilla-Signature: sha256=HMAC-SHA256(secret, timestamp + \".\" + body)"
                    ),
                ], required: ["id", "name", "url"]),
            "WebhookList": ["type": "array", "items": ["$ref": "#/components/schemas/Webhook"]],
            "ServiceProfileInput": object(
                ["document": string("the profile's YAML"), "secrets": ["type": "object", "additionalProperties": string()]], required: []),
            "ServiceProfile": object(
                [
                    "id": string("UUID"), "name": string(), "description": string(), "version": ["type": "integer"],
                    "document": string("YAML"), "dependencyRoles": ["type": "array", "items": string()],
                    "targetRoles": ["type": "array", "items": string()], "secrets": ["type": "array", "items": string()],
                    "secretsSet": ["type": "array", "items": string()], "updatedAt": string("date-time"),
                ], required: ["id", "name", "version", "document", "dependencyRoles", "targetRoles", "secrets", "secretsSet"]),
            "ServiceProfileList": ["type": "array", "items": ["$ref": "#/components/schemas/ServiceProfile"]],
            "ServiceProfileVersionList": [
                "type": "array",
                "items": object(
                    ["version": ["type": "integer"], "author": string(), "createdAt": string("date-time")], required: ["version", "author"]),
            ],
            "VMChoice": object(
                ["id": string("UUID"), "hostName": string(), "ip": string(), "role": string()], required: ["id", "hostName", "ip", "role"]),
            "ConfigurationOptions": object(
                [
                    "profileID": string("UUID"), "profile": string(), "version": ["type": "integer"], "environmentID": string("UUID"),
                    "environment": string(),
                    "dependencies": [
                        "type": "array",
                        "items": object(
                            [
                                "role": string(), "checks": ["type": "array", "items": string()],
                                "vms": ["type": "array", "items": ["$ref": "#/components/schemas/VMChoice"]],
                            ], required: ["role", "checks", "vms"]),
                    ],
                    "targets": [
                        "type": "array",
                        "items": object(
                            [
                                "role": string(), "files": ["type": "array", "items": string()],
                                "restart": ["type": "array", "items": string()],
                                "vms": ["type": "array", "items": ["$ref": "#/components/schemas/VMChoice"]],
                            ], required: ["role", "files", "restart", "vms"]),
                    ],
                ], required: ["profileID", "profile", "version", "environmentID", "environment", "dependencies", "targets"]),
            "NewConfigurationRun": object(
                [
                    "profileID": string("UUID"), "environmentID": string("UUID"),
                    "dependencies": ["type": "object", "additionalProperties": string("VM ID"), "description": "dependency role → VM ID"],
                ], required: ["profileID", "environmentID", "dependencies"]),
            "ConfigurationRun": object(
                [
                    "id": string("UUID"), "profileID": string("UUID"), "profile": string(), "version": ["type": "integer"],
                    "environmentID": string("UUID"), "environment": string(),
                    "dependencies": ["type": "object", "additionalProperties": ["$ref": "#/components/schemas/VMChoice"]],
                    "checkPassed": ["type": "boolean"], "checkedAt": string("date-time"), "lastJobID": string("UUID"),
                ], required: ["id", "profileID", "profile", "version", "environmentID", "environment", "dependencies"]),
            "ConfigurationTargets": object(["targets": ["type": "array", "items": string("VM ID")]], required: ["targets"]),
            "DependencyCheckReport": object(
                [
                    "passed": ["type": "boolean"], "elapsedMilliseconds": ["type": "integer"],
                    "failures": ["type": "array", "items": string()],
                    "results": [
                        "type": "array",
                        "items": object(
                            [
                                "role": string(), "vmID": string("UUID"), "vm": string(), "address": string(), "port": ["type": "integer"],
                                "service": string(), "origin": string("platform or the target VM's host name"),
                                "originVMID": string("UUID"),
                                "method": string("protocol, processAndPort or port"), "methodDescription": string(),
                                "passed": ["type": "boolean"], "layer": string("on failure: noRoute, portClosed, serviceNotRunning, …"),
                                "message": string(), "milliseconds": ["type": "integer"],
                            ], required: ["role", "vmID", "vm", "address", "port", "service", "origin", "method", "passed", "message"]),
                    ],
                ], required: ["passed", "results", "failures"]),
            "ConfigurationPreviewList": [
                "type": "array",
                "items": object(
                    [
                        "vm": ["$ref": "#/components/schemas/VMChoice"], "restart": ["type": "array", "items": string()],
                        "problem": string("why the guest's files could not be read"),
                        "files": [
                            "type": "array",
                            "items": object(
                                ["path": string(), "changed": ["type": "boolean"], "diff": string("unified diff, secrets masked")],
                                required: ["path", "changed", "diff"]),
                        ],
                    ], required: ["vm", "files", "restart"]),
            ],
            "DriftRequest": object(["environmentID": string("UUID; all environments when left out")], required: []),
            "DriftList": [
                "type": "array",
                "items": object(
                    [
                        "vmID": string("UUID"), "vm": string(), "path": string(), "profile": string(), "version": ["type": "integer"],
                        "appliedAt": string("date-time"), "state": string("same, changed, missing or unreachable"), "detail": string(),
                    ], required: ["vmID", "vm", "path", "profile", "version", "appliedAt", "state"]),
            ],
            "Delivery": object(
                [
                    "id": string("UUID"), "messageID": string("UUID"), "kind": string(),
                    "channel": ["type": "string", "enum": NotificationChannel.allCases.map(\.rawValue)], "target": string(),
                    "subject": string(), "status": ["type": "string", "enum": DeliveryStatus.allCases.map(\.rawValue)],
                    "attempts": ["type": "integer"], "nextAttemptAt": string(), "lastStatusCode": ["type": "integer"],
                    "lastError": string(), "createdAt": string(), "deliveredAt": string(),
                    "attemptLog": [
                        "type": "array",
                        "items": object(
                            [
                                "number": ["type": "integer"], "at": string(),
                                "outcome": ["type": "string", "enum": ["delivered", "retry", "failed"]],
                                "statusCode": ["type": "integer"], "error": string(), "milliseconds": ["type": "integer"],
                            ], required: ["number", "at", "outcome", "milliseconds"]),
                    ],
                ], required: ["id", "messageID", "kind", "channel", "target", "subject", "status", "attempts", "attemptLog"]),
            "APIDocument": object(
                [
                    "openapi": string("3.0.3"), "info": ["type": "object"], "paths": ["type": "object"],
                    "components": ["type": "object"],
                ], required: ["openapi", "info", "paths", "components"]),
            "Error": object(
                ["error": object(["code": string(), "message": string()], required: ["code", "message"])], required: ["error"]),
        ]
    }

    static func document() -> [String: Any] {
        var paths: [String: [String: Any]] = [:]
        for operation in operations {
            var entry: [String: Any] = ["summary": operation.summary, "x-flotilla-action": operation.action.rawValue]
            var parameters: [[String: Any]] = operation.query.compactMap { name in
                queryParameters[name].map { ["name": name, "in": "query", "required": false].merging($0) { _, specific in specific } }
            }
            for match in operation.path.matches(of: /\{(\w+)\}/) {
                let schema = pathParameters[String(match.1)] ?? ["type": "string", "format": "uuid"]
                parameters.append(["name": String(match.1), "in": "path", "required": true, "schema": schema])
            }
            if !parameters.isEmpty { entry["parameters"] = parameters }
            if let request = operation.request {
                entry["requestBody"] = [
                    "required": true, "content": ["application/json": ["schema": ["$ref": "#/components/schemas/\(request)"]]],
                ]
            }
            var success: [String: Any] = ["description": "success"]
            if let response = operation.response {
                let reference: [String: Any] = ["$ref": "#/components/schemas/\(response)"]
                let schema: [String: Any] =
                    operation.list
                    ? object(
                        [
                            "items": ["type": "array", "items": reference], "total": ["type": "integer"],
                            "page": ["type": "integer"], "per": ["type": "integer"],
                        ], required: ["items", "total", "page", "per"])
                    : reference
                success["content"] =
                    operation.eventStream
                    ? [
                        "text/event-stream": [
                            "schema": object(
                                [
                                    "event": ["type": "string", "enum": ["summary", "change", "reload"]],
                                    "data": string("JSON: a DashboardSummary (summary) or a HealthChange (change)"), "id": string(),
                                ],
                                required: ["event", "data"])
                        ]
                    ]
                    : ["application/json": ["schema": schema]]
            }
            let error: [String: Any] = [
                "description": "error", "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]],
            ]
            let unavailable: [String: Any] = [
                "description": "a system it needs (the database, vSphere, a guest) is unavailable",
                "content": ["application/json": ["schema": ["$ref": "#/components/schemas/\(operation.unavailableResponse)"]]],
            ]
            entry["responses"] = [
                String(operation.status): success, "400": error, "401": error, "403": error, "404": error, "409": error, "503": unavailable,
            ]
            if case .roles(let roles) = operation.action.rule {
                entry["security"] = [["bearer": [String]()], ["session": [String]()]]
                // Who may call it (USR-6); scripts/check-api-fuzz checks everyone else is refused.
                entry["x-flotilla-roles"] = roles.map(\.rawValue).sorted()
            }
            paths[operation.path, default: [:]][operation.method.rawValue.lowercased()] = entry
        }
        return [
            "openapi": "3.0.3",
            "info": [
                "title": "Flotilla API", "version": "1",
                "description": "Stands up, watches and maintains environments of VMs on VMware vSphere.",
            ],
            "paths": paths,
            "components": [
                "schemas": schemas,
                "securitySchemes": [
                    "bearer": ["type": "http", "scheme": "bearer", "description": "a personal API token"],
                    "session": [
                        "type": "apiKey", "in": "cookie", "name": SessionCookie.name,
                        "description":
                            "state-changing calls with the cookie also send the session's CSRF token (from the sign-in answer) in X-CSRF-Token",
                    ],
                ],
            ],
        ]
    }

    /// The document never changes while the server runs, so it is serialized once, here.
    static func register(_ api: any RoutesBuilder) throws {
        let body = ByteBuffer(data: try JSONSerialization.data(withJSONObject: document(), options: [.sortedKeys, .prettyPrinted]))
        api.get("openapi.json") { _ async throws -> Response in
            Response(status: .ok, headers: ["Content-Type": "application/json"], body: .init(buffer: body))
        }.requires(.readAPIDocument)
    }
}
