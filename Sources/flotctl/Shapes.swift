/// The server's JSON shapes as the client reads them (described in `/api/v1/openapi.json`).
/// Decoding is tolerant on purpose: unknown fields are ignored, states are kept as text (a
/// newer server may add some), times are shown as sent, and what the client only displays is
/// optional, so a server that grows does not break an older client.
enum Shapes {
    struct Page<Item: Decodable & Sendable>: Decodable, Sendable {
        var items: [Item]
        var total: Int
        var page: Int
        var per: Int
    }

    struct EnvironmentRow: Decodable, Sendable {
        var id: String
        var name: String
        var description: String?
        var vmCount: Int?
    }

    struct Environment: Decodable, Sendable {
        var id: String
        var name: String
        var description: String?
        var vms: [VM]
    }

    struct VM: Decodable, Sendable {
        var id: String
        var environmentID: String?
        var hostName: String
        var ip: String
        var prefixLength: Int?
        var gateway: String?
        var dns1: String?
        var dns2: String?
        var role: String?
        var status: String
        var statusReason: String?
        var powerState: String?
        var guestOS: String?
        var cpus: Int?
        var memoryMB: Int?
        var diskGB: Double?
        var notes: String?
    }

    struct NewVM: Decodable, Sendable {
        var vm: VM
        var jobID: String
    }

    struct JobReference: Decodable, Sendable {
        var jobID: String
    }

    struct Deployment: Decodable, Sendable {
        var environmentID: String
        var jobID: String
        var vms: Int?
    }

    struct Step: Decodable, Sendable {
        var position: Int?
        var title: String
        var vmName: String?
        var status: String
        var log: String?
    }

    struct Job: Decodable, Sendable {
        var id: String
        var kind: String?
        var title: String
        var status: String
        var summary: String?
        var `operator`: String?
        var createdAt: String?
        var finishedAt: String?
        var steps: [Step]?

        /// States in which a job still moves; any other state, known or new, is an end
        /// (a job that needs attention waits for a person, not for the client).
        static let activeStates: Set<String> = ["queued", "running"]

        var isFinished: Bool { finishedAt != nil || !Self.activeStates.contains(status) }
    }

    struct User: Decodable, Sendable {
        var id: String
        var username: String
        var role: String
        var createdAt: String?
    }

    struct Token: Decodable, Sendable {
        var id: String
        var name: String
        /// Only in the answer that creates the token.
        var token: String?
    }

    struct LogEntry: Decodable, Sendable {
        var id: Int?
        var kind: String
        var time: String
        var vmName: String?
        var vmRole: String?
        var `operator`: String?
        var operatorIP: String?
        var action: String
        var result: String
        var details: String
    }

    struct Backup: Decodable, Sendable {
        var name: String
        var entries: Int
        var size: Int?
    }

    /// Requests.
    struct Credentials: Encodable, Sendable {
        var username: String
        var password: String
    }

    struct NewToken: Encodable, Sendable {
        var name: String
        var expiresInDays: Int?
    }

    struct EnvironmentInput: Encodable, Sendable {
        var name: String
        var description: String?
    }

    struct PowerInput: Encodable, Sendable {
        var action: String
        var ids: [String]?
    }

    struct VMInput: Encodable, Sendable {
        var hostName: String
        var ip: String
        var netmask: String
        var gateway: String
        var dns1: String?
        var dns2: String?
        var role: String
        var password: String
        var passwordConfirmation: String
        var notes: String?
    }

    struct PasswordInput: Encodable, Sendable {
        var password: String
        var passwordConfirmation: String
    }

    struct NetworkInput: Encodable, Sendable {
        var ip: String
        var netmask: String
        var gateway: String
        var dns1: String?
        var dns2: String?
    }

    struct Deploy: Encodable, Sendable {
        var blueprint: String
        var password: String?
        var passwordConfirmation: String?
    }

    struct NewUser: Encodable, Sendable {
        var username: String
        var password: String
        var passwordConfirmation: String
        var role: String
    }

    struct UserChanges: Encodable, Sendable {
        var password: String?
        var passwordConfirmation: String?
        var role: String?
    }
}
