import Crypto
import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Vapor

/// Receives agents' heartbeats and events (SPEC MON-3, MON-4). A request is the agent's only
/// proof of identity: `X-Flotilla-Agent` names the VM, `X-Flotilla-Signature` is
/// HMAC-SHA256 with that VM's secret over timestamp, method, path and body, and the body must
/// name the same VM. Anything else is refused and written to the audit log. Events are stored
/// once per (VM, epoch, sequence), so an agent resending after a lost answer changes nothing;
/// each new one is audited and handed to `Notifications.publish`.
struct AgentIngestion {
    let database: any Database
    let secrets: SecretBox
    let identities: AgentIdentities
    let notifications: Notifications
    /// Keeps refusals from one address from flooding the audit log.
    let refusalLimit: RefusalAuditLimit
    let logger: Logger

    /// A request older or newer than this is refused (a replayed capture).
    static let clockSkewSeconds: Double = 300

    /// Who a verified request came from.
    struct Agent: Sendable {
        let vmID: UUID
        let vmName: String
        let roleID: UUID
        let roleName: String
        let hostIP: String
        let secret: SymmetricKey
    }

    /// Checks the credential and signature; refusals are audited without the offered values
    /// (at most `RefusalAuditLimit.burst` entries per address per minute).
    func authenticate(_ request: Request, body: ByteBuffer) async throws -> Agent {
        let headers = request.headers
        guard let vmText = headers.first(name: "X-Flotilla-Agent"), let vmID = UUID(uuidString: vmText),
            let timestampText = headers.first(name: "X-Flotilla-Timestamp"), let timestamp = Double(timestampText),
            let signatureText = headers.first(name: "X-Flotilla-Signature"), let signature = Self.bytes(hex: signatureText)
        else {
            return try await refuse(request, nil, "missing or malformed agent credential headers")
        }
        guard abs(Date().timeIntervalSince1970 - timestamp) <= Self.clockSkewSeconds else {
            return try await refuse(request, nil, "signature timestamp outside ±\(Int(Self.clockSkewSeconds)) s", vmID: vmID)
        }
        var message = Data("\(timestampText)\n\(request.method.rawValue)\n\(request.url.path)\n".utf8)
        message.append(contentsOf: body.readableBytesView)
        for fresh in [false, true] {
            guard let agent = try await identities.agent(vmID, database: database, secrets: secrets, reload: fresh) else {
                return try await refuse(request, nil, "no agent credential for the VM named in the request", vmID: vmID)
            }
            if HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: message, using: agent.secret) {
                return agent
            }
            if fresh { return try await refuse(request, agent, "wrong signature (not this VM's credential)") }
        }
        return try await refuse(request, nil, "wrong signature")
    }

    private func refuse(_ request: Request, _ agent: Agent?, _ reason: String, vmID: UUID? = nil) async throws -> Agent {
        let named = agent.map { " claiming VM \($0.vmName)" } ?? vmID.map { " claiming VM id \($0)" } ?? ""
        let address = request.operatorIP
        switch refusalLimit.admit(address) {
        case .count:
            logger.warning("agent report\(named) from \(address) refused: \(reason) (counted, not audited: too many refusals from there)")
        case .log(let unlogged):
            let earlier = unlogged > 0 ? "; \(unlogged) more refused from this address before were counted, not logged" : ""
            await AuditLog.record(
                .error, action: "agent.refused", result: .failure, details: "agent report\(named) refused: \(reason)\(earlier)",
                vmName: agent?.vmName, vmRole: agent?.roleName, by: AuditLog.Actor(name: "agent", ip: request.operatorIP),
                on: database, logger: logger)
        }
        throw FlotillaError(.unauthenticated, "agent report refused")
    }

    /// The body names the VM the credential belongs to: a valid signature over another VM's report is a forgery.
    private func requireSameVM(_ named: String, _ agent: Agent, _ request: Request) async throws {
        guard UUID(uuidString: named) == agent.vmID else {
            _ = try await refuse(request, agent, "the report names another VM than its credential")
            return
        }
    }

    /// One statement per heartbeat: an upsert of the VM's status row that answers whether the
    /// agent was silent. Only then a second statement ends the silence (once, however many
    /// heartbeats race), audited and notified as `agent.back`.
    func heartbeat(_ heartbeat: AgentReport.Heartbeat, from agent: Agent, request: Request) async throws {
        try await requireSameVM(heartbeat.vm, agent, request)
        try AgentReport.validate(heartbeat)
        let now = Date()
        let services = String(decoding: try JSONEncoder().encode(heartbeat.services), as: UTF8.self)
        let sql = try Self.sql(database)
        let stored = try await sql.insert(into: AgentStatus.schema)
            .columns("id", "vm_id", "last_heartbeat_at", "agent_version", "services", "queued_events", "agent_instance")
            .values(
                SQLBind(UUID()), SQLBind(agent.vmID), SQLBind(now), SQLBind(heartbeat.agentVersion), SQLBind(services),
                SQLBind(heartbeat.queuedEvents), SQLBind(heartbeat.instance)
            )
            .onConflict(with: ["vm_id"]) { conflict in
                conflict.set(excludedValueOf: "last_heartbeat_at").set(excludedValueOf: "agent_version").set(excludedValueOf: "services")
                    .set(excludedValueOf: "queued_events").set(excludedValueOf: "agent_instance")
            }
            .returning("silent_since")
            .first()
        guard let wasSilent = try stored?.decode(column: "silent_since", as: Date?.self) else { return }
        let ended = try await sql.update(AgentStatus.schema).set("silent_since", to: SQLLiteral.null)
            .where("vm_id", .equal, agent.vmID).where("silent_since", .isNot, SQLLiteral.null)
            .returning("vm_id").all()
        guard !ended.isEmpty else { return }  // another heartbeat ended this silence
        let silence = Int(now.timeIntervalSince(wasSilent))
        await AuditLog.record(
            .operation, action: "agent.back", result: .success,
            details: "monitor agent on \(agent.hostIP) reports again after \(silence) s of silence", vmName: agent.vmName,
            vmRole: agent.roleName, by: .system, on: database, logger: logger)
        await publish(
            NotificationEvent(source: .agent, kind: .agentBack, vmName: agent.vmName, vmRole: agent.roleName, hostIP: agent.hostIP))
    }

    static func sql(_ database: any Database) throws -> any SQLDatabase {
        guard let sql = database as? any SQLDatabase else { throw FlotillaError(.unavailable, "agent reports need an SQL database") }
        return sql
    }

    /// Stores each new event once, in the order sent; returns the last sequence acknowledged.
    func events(_ batch: AgentReport.Events, from agent: Agent, request: Request) async throws -> Int64 {
        try await requireSameVM(batch.vm, agent, request)
        guard !batch.events.isEmpty, batch.events.count <= 100 else { throw FlotillaError.validation("a report carries 1 to 100 events") }
        let roleServices = (try? await RoleMonitors(database: database).services(of: agent.roleID)) ?? []
        for event in batch.events {
            do {
                try AgentReport.validate(event)
            } catch {
                await AuditLog.record(
                    .error, action: "agent.event.refused", result: .failure,
                    details: "a malformed event (sequence \(event.sequence)) from the agent on \(agent.hostIP) was dropped",
                    vmName: agent.vmName, vmRole: agent.roleName, by: .system, on: database, logger: logger)
                continue
            }
            try await store(event, from: agent, roleServices: roleServices)
        }
        return batch.events.map(\.sequence).max() ?? 0
    }

    private func store(_ event: AgentReport.Event, from agent: Agent, roleServices: [MonitoredService]) async throws {
        let record = AgentEventRecord()
        record.vmID = agent.vmID
        record.epoch = event.epoch
        record.sequence = event.sequence
        record.kind = event.kind
        record.service = event.service
        record.attempts = event.attempts
        record.outageStartedAt = event.outageStartedAt.map(Date.init(timeIntervalSince1970:))
        record.occurredAt = Date(timeIntervalSince1970: event.occurredAt)
        record.receivedAt = Date()
        do {
            try await record.create(on: database)
        } catch let error as any DatabaseError where error.isConstraintFailure {
            return  // delivered before; its answer was lost
        }
        let kind = AgentReport.eventKinds[event.kind] ?? .restarted
        await AuditLog.record(
            kind == .gaveUp ? .error : .operation, action: "agent.\(event.kind)", result: kind == .gaveUp ? .failure : .success,
            details: Self.describe(event, hostIP: agent.hostIP), vmName: agent.vmName, vmRole: agent.roleName, by: .system,
            on: database, logger: logger)
        let owners = (try? await RoleMonitors(database: database).ownerNames(roleServices.first { $0.name == event.service })) ?? []
        await publish(
            NotificationEvent(
                source: .agent, kind: kind, vmName: agent.vmName, vmRole: agent.roleName, hostIP: agent.hostIP, service: event.service,
                attempts: event.attempts, outageStartedAt: record.outageStartedAt, occurredAt: record.occurredAt, owners: owners))
    }

    /// "service redis on 10.77.0.5 restarted after 1 attempt; down 1.2 s from 2026-…Z".
    static func describe(_ event: AgentReport.Event, hostIP: String) -> String {
        let what =
            switch event.kind {
            case "gave_up": "gave up after \(event.attempts) attempts"
            case "recovered_from_giving_up": "runs again after the agent gave up"
            default: "restarted after \(event.attempts) attempt\(event.attempts == 1 ? "" : "s")"
            }
        var text = "service \(event.service) on \(hostIP) \(what)"
        if let start = event.outageStartedAt {
            let outage = String(format: "%.1f", max(0, event.occurredAt - start))
            text += "; outage \(outage) s from \(Date(timeIntervalSince1970: start).formatted(.iso8601))"
        }
        return text
    }

    /// Notification trouble never fails ingestion: the event is stored and audited already.
    func publish(_ event: NotificationEvent) async {
        do {
            try await notifications.publish(event)
        } catch {
            logger.error("could not publish agent event: \(FlotillaError.describe(error))")
        }
    }

    static func bytes(hex: String) -> [UInt8]? {
        guard hex.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}

/// Agents' identities (VM, role, address, unsealed secret), kept for a minute so a heartbeat
/// costs no credential read and no unsealing (a reload is one statement); a wrong signature
/// reloads once, so a rotated credential is used at once.
final class AgentIdentities: Sendable {
    private let cache = NIOLockedValueBox([UUID: (AgentIngestion.Agent, Date)]())
    static let lifetime: TimeInterval = 60

    func agent(_ vmID: UUID, database: any Database, secrets: SecretBox, reload: Bool) async throws -> AgentIngestion.Agent? {
        let now = Date()
        if !reload, let (agent, loaded) = cache.withLockedValue({ $0[vmID] }), now.timeIntervalSince(loaded) < Self.lifetime {
            return agent
        }
        guard
            let row = try await AgentIngestion.sql(database).select()
                .column(SQLColumn("secret_sealed", table: "c")).column(SQLColumn("host_name", table: "v"))
                .column(SQLColumn("ip", table: "v")).column(SQLColumn("role_id", table: "v"))
                .column(SQLColumn("name", table: "r"), as: "role_name")
                .from(SQLAlias(SQLIdentifier(AgentCredential.schema), as: SQLIdentifier("c")))
                .join(
                    SQLAlias(SQLIdentifier(VM.schema), as: SQLIdentifier("v")), on: SQLColumn("id", table: "v"), .equal,
                    SQLColumn("vm_id", table: "c")
                )
                .join(
                    SQLAlias(SQLIdentifier(Role.schema), as: SQLIdentifier("r")), on: SQLColumn("id", table: "r"), .equal,
                    SQLColumn("role_id", table: "v")
                )
                .where(SQLColumn("vm_id", table: "c"), .equal, SQLBind(vmID))
                .first()
        else {
            cache.withLockedValue { _ = $0.removeValue(forKey: vmID) }
            return nil
        }
        let secret = try secrets.open(try row.decode(column: "secret_sealed", as: String.self))
        let agent = AgentIngestion.Agent(
            vmID: vmID, vmName: try row.decode(column: "host_name", as: String.self),
            roleID: try row.decode(column: "role_id", as: UUID.self),
            roleName: try row.decode(column: "role_name", as: String.self), hostIP: try row.decode(column: "ip", as: String.self),
            secret: SymmetricKey(data: Data(secret.utf8)))
        cache.withLockedValue { $0[vmID] = (agent, now) }
        return agent
    }

    func forget(_ vmID: UUID) {
        cache.withLockedValue { _ = $0.removeValue(forKey: vmID) }
    }
}

extension Application {
    private struct AgentIdentitiesKey: StorageKey, LockKey {
        typealias Value = AgentIdentities
    }

    var agentIdentities: AgentIdentities {
        locks.lock(for: AgentIdentitiesKey.self).withLock {
            if let existing = storage[AgentIdentitiesKey.self] { return existing }
            let created = AgentIdentities()
            storage[AgentIdentitiesKey.self] = created
            return created
        }
    }
}

extension Request {
    var agentIngestion: AgentIngestion {
        AgentIngestion(
            database: db, secrets: application.flotilla.secrets, identities: application.agentIdentities,
            notifications: application.notifications, refusalLimit: application.agentRefusalLimit, logger: logger)
    }
}
