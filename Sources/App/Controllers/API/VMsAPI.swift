import Fluent
import Vapor

/// `/api/v1/vms`, and adding or adopting VMs under `/api/v1/environments/:id` (SPEC VM-5..10, BEY-4).
enum VMsAPI {
    static func register(_ api: any RoutesBuilder) {
        api.post("environments", ":id", "vms", use: add).requires(.addVM)
        api.post("environments", ":id", "adopt", use: adopt).requires(.addVM)
        api.get("vms", ":id", use: show).requires(.viewVMs)
        api.delete("vms", ":id", use: delete).requires(.deleteVM)
        api.post("vms", ":id", "power", use: power).requires(.powerVM)
        api.post("vms", ":id", "password", use: changePassword).requires(.changeVMPassword)
        api.post("vms", ":id", "network", use: changeNetwork).requires(.changeVMNetwork)
    }

    @Sendable static func add(request: Request) async throws -> Response {
        let (vm, jobID) = try await request.vms.add(
            try request.content.decode(VMs.Input.self), to: try request.uuidParameter("environment"))
        return try await API.NewVMAnswer(vm: try API.VMBody(vm), jobID: jobID).encodeResponse(status: .accepted, for: request)
    }

    @Sendable static func adopt(request: Request) async throws -> Response {
        let (vms, _) = try await request.adoptVMs(
            try request.content.decode(VSphereImport.Input.self), into: try request.uuidParameter("environment"))
        return try await vms.map(API.VMBody.init).encodeResponse(status: .created, for: request)
    }

    @Sendable static func show(request: Request) async throws -> API.VMBody {
        try API.VMBody(try await request.vms.find(try request.uuidParameter("VM")))
    }

    @Sendable static func delete(request: Request) async throws -> Response {
        try await API.JobReference.accepted(try await request.vms.delete(try request.uuidParameter("VM")), for: request)
    }

    @Sendable static func power(request: Request) async throws -> Response {
        let input = try request.content.decode(API.PowerInput.self)
        let jobID = try await request.vms.power(try request.uuidParameter("VM"), action: try PowerAction(parsing: input.action))
        return try await API.JobReference.accepted(jobID, for: request)
    }

    @Sendable static func changePassword(request: Request) async throws -> Response {
        let jobID = try await request.vms.changePassword(
            try request.uuidParameter("VM"), try request.content.decode(VMs.PasswordInput.self))
        return try await API.JobReference.accepted(jobID, for: request)
    }

    @Sendable static func changeNetwork(request: Request) async throws -> Response {
        let jobID = try await request.vms.changeNetwork(try request.uuidParameter("VM"), try request.content.decode(VMs.NetworkInput.self))
        return try await API.JobReference.accepted(jobID, for: request)
    }
}

extension API {
    struct VMBody: Content {
        var id: UUID
        var environmentID: UUID
        var hostName: String
        var ip: String
        var prefixLength: Int
        var gateway: String
        var dns1: String?
        var dns2: String?
        var role: String
        var status: String
        var statusReason: String?
        var powerState: String?
        var guestOS: String?
        var cpus: Int?
        var memoryMB: Int?
        var diskGB: Double?
        var notes: String
        var vsphereReference: String?

        init(_ vm: VM) throws {
            id = try vm.requireID()
            environmentID = vm.$environment.id
            hostName = vm.hostName
            ip = vm.ip
            prefixLength = vm.prefixLength
            gateway = vm.gateway
            dns1 = vm.dns1
            dns2 = vm.dns2
            role = vm.$role.value?.name ?? ""
            status = vm.status.rawValue
            statusReason = vm.statusReason
            powerState = vm.powerState
            guestOS = vm.guestOS
            cpus = vm.cpus
            memoryMB = vm.memoryMB
            diskGB = vm.diskGB
            notes = vm.notes
            vsphereReference = vm.vsphereReference
        }
    }

    struct NewVMAnswer: Content {
        var vm: VMBody
        var jobID: UUID
    }
}
