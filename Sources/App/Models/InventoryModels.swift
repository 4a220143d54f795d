import Fluent
import VSphere
import Vapor

/// A vCenter or standalone ESXi that VMs are made on, with where new VMs go.
public final class VSphereConnection: Model, @unchecked Sendable {
    public static let schema = "vsphere_connections"

    @ID(key: .id) public var id: UUID?
    @Field(key: "name") public var name: String
    @Field(key: "url") public var url: String
    @Field(key: "username") public var username: String
    /// Sealed with `SecretBox`; never shown back.
    @Field(key: "password_sealed") var passwordSealed: String
    /// SHA-256 thumbprint of the server certificate to pin, for self-signed vCenter/ESXi.
    @OptionalField(key: "thumbprint") public var thumbprint: String?
    @OptionalField(key: "datacenter") public var datacenter: String?
    @OptionalField(key: "vm_folder") public var vmFolder: String?
    @OptionalField(key: "resource_pool") public var resourcePool: String?
    @OptionalField(key: "datastore") public var datastore: String?
    @OptionalField(key: "network") public var network: String?
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?

    public init() {}
}

/// What a VM does in its environment, and how it is made (SPEC "role").
public final class Role: Model, @unchecked Sendable {
    public static let schema = "roles"

    @ID(key: .id) public var id: UUID?
    @Field(key: "name") public var name: String
    @Parent(key: "connection_id") public var connection: VSphereConnection
    @Field(key: "template") public var template: String
    @OptionalField(key: "cpus") public var cpus: Int?
    @OptionalField(key: "memory_mb") public var memoryMB: Int?
    @Field(key: "ssh_user") public var sshUser: String
    /// How the guest's network is configured from inside (`ifupdown` to begin with).
    @Field(key: "network_style") public var networkStyle: String
    /// Process names shown as the VM's services (SPEC VM-5), comma-separated.
    @Field(key: "services") public var services: String
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?

    public init() {}
}

/// A named group of VMs that together provide one service.
public final class Environment: Model, @unchecked Sendable {
    public static let schema = "environments"

    @ID(key: .id) public var id: UUID?
    @Field(key: "name") public var name: String
    @Field(key: "description") public var description: String
    @Children(for: \.$environment) public var vms: [VM]
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) public var updatedAt: Date?

    public init() {}

    public init(name: String, description: String) {
        self.name = name
        self.description = description
    }
}

/// Where a VM stands in Flotilla's eyes (its power state is vSphere's).
public enum VMStatus: String, Codable, Sendable {
    /// Being created by a job.
    case provisioning
    /// Created and reachable when last checked.
    case ready
    /// Creation failed; the record stays so the reason is visible.
    case failed
    /// Gone from vSphere without Flotilla removing it.
    case missing
}

public final class VM: Model, @unchecked Sendable {
    public static let schema = "vms"

    @ID(key: .id) public var id: UUID?
    @Parent(key: "environment_id") public var environment: Environment
    @Parent(key: "role_id") public var role: Role
    @Field(key: "host_name") public var hostName: String
    @Field(key: "ip") public var ip: String
    @Field(key: "prefix_length") public var prefixLength: Int
    @Field(key: "gateway") public var gateway: String
    @OptionalField(key: "dns1") public var dns1: String?
    @OptionalField(key: "dns2") public var dns2: String?
    @Field(key: "password_sealed") var passwordSealed: String
    @OptionalField(key: "vsphere_ref") public var vsphereReference: String?
    /// The guest's SSH host key (`ssh-ed25519 AAAA…`), pinned on first contact: the platform
    /// accepts no other key from this VM, whatever its address.
    @OptionalField(key: "host_key") var hostKey: String?
    /// The platform key this VM's guest trusts (see `PlatformKeys`).
    @OptionalField(key: "platform_key_id") var platformKeyID: UUID?
    @Enum(key: "status") public var status: VMStatus
    @OptionalField(key: "status_reason") public var statusReason: String?
    @OptionalField(key: "power_state") public var powerState: String?
    @OptionalField(key: "guest_os") public var guestOS: String?
    @OptionalField(key: "cpus") public var cpus: Int?
    @OptionalField(key: "memory_mb") public var memoryMB: Int?
    @OptionalField(key: "disk_gb") public var diskGB: Double?
    @Field(key: "notes") public var notes: String
    @Timestamp(key: "created_at", on: .create) public var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) public var updatedAt: Date?

    public init() {}

    /// A record for a validated spec; the password arrives sealed.
    init(environmentID: UUID, role: Role, spec: VMSpec, passwordSealed: String, status: VMStatus, notes: String) throws {
        $environment.id = environmentID
        $role.id = try role.requireID()
        $role.value = role
        hostName = spec.hostName
        ip = spec.ip
        prefixLength = spec.prefixLength
        gateway = spec.gateway
        dns1 = spec.dns1
        dns2 = spec.dns2
        self.passwordSealed = passwordSealed
        self.status = status
        self.notes = notes
        cpus = role.cpus
        memoryMB = role.memoryMB
    }

    /// Takes what vSphere reports about the machine.
    func update(from summary: VMSummary) {
        powerState = summary.powerState.rawValue
        guestOS = summary.guestOS
        cpus = summary.cpuCount
        memoryMB = summary.memoryMB
        diskGB = summary.diskGB
    }
}
