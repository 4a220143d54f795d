import Fluent
import Vapor

/// `/api/v1/connections`, `/roles`, `/environments`, `/vms` and `/jobs` (SPEC VM-1..10, BEY-1).
enum InventoryAPI {
    struct ConnectionBody: Content {
        var id: UUID
        var name: String
        var url: String
        var username: String
        var thumbprint: String?
        var datacenter: String?
        var vmFolder: String?
        var resourcePool: String?
        var datastore: String?
        var network: String?

        init(_ connection: VSphereConnection) throws {
            id = try connection.requireID()
            name = connection.name
            url = connection.url
            username = connection.username
            thumbprint = connection.thumbprint
            datacenter = connection.datacenter
            vmFolder = connection.vmFolder
            resourcePool = connection.resourcePool
            datastore = connection.datastore
            network = connection.network
        }
    }

    struct RoleBody: Content {
        var id: UUID
        var name: String
        var connectionID: UUID
        var template: String
        var cpus: Int?
        var memoryMB: Int?
        var sshUser: String
        var networkStyle: String
        var services: [String]

        init(_ role: Role) throws {
            id = try role.requireID()
            name = role.name
            connectionID = role.$connection.id
            template = role.template
            cpus = role.cpus
            memoryMB = role.memoryMB
            sshUser = role.sshUser
            networkStyle = role.networkStyle
            services = role.services.split(separator: ",").map(String.init)
        }
    }

    struct EnvironmentInput: Content {
        var name: String
        var description: String?
    }

    struct DescriptionInput: Content {
        var description: String
    }

    struct PowerInput: Content {
        var action: String
        var ids: [UUID]?
    }

    struct IDs: Content {
        var ids: [UUID]
    }

    struct JobReference: Content {
        var jobID: UUID
    }

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

    struct EnvironmentBody: Content {
        var id: UUID
        var name: String
        var description: String
        var vms: [VMBody]
    }

    struct NewVMAnswer: Content {
        var vm: VMBody
        var jobID: UUID
    }

    struct StepBody: Content {
        var position: Int
        var title: String
        var vmName: String?
        var status: String
        var attempts: Int
        var log: String
        var startedAt: Date?
        var finishedAt: Date?
    }

    struct JobBody: Content {
        var id: UUID
        var kind: String
        var title: String
        var status: String
        var summary: String
        var `operator`: String?
        var operatorIP: String?
        var createdAt: Date?
        var startedAt: Date?
        var finishedAt: Date?
        var steps: [StepBody]?

        init(_ job: Job, steps: [JobStep]? = nil) throws {
            id = try job.requireID()
            kind = job.kind
            title = job.title
            status = job.status.rawValue
            summary = job.summary
            self.operator = job.operatorName
            operatorIP = job.operatorIP
            createdAt = job.createdAt
            startedAt = job.startedAt
            finishedAt = job.finishedAt
            self.steps = steps?.map {
                StepBody(position: $0.position, title: $0.title, vmName: $0.vmName, status: $0.status.rawValue,
                         attempts: $0.attempts, log: $0.log, startedAt: $0.startedAt, finishedAt: $0.finishedAt)
            }
        }
    }

    static func register(_ api: any RoutesBuilder) {
        api.get("connections", use: listConnections).requires(.viewSettings)
        api.post("connections", use: addConnection).requires(.changeSettings)
        api.post("connections", "test", use: testConnection).requires(.changeSettings)
        api.get("connections", ":id", "templates", use: templates).requires(.viewSettings)
        api.delete("connections", ":id", use: deleteConnection).requires(.changeSettings)

        api.get("roles", use: listRoles).requires(.viewEnvironments)
        api.post("roles", use: addRole).requires(.changeSettings)
        api.patch("roles", ":id", use: editRole).requires(.changeSettings)

        api.get("environments", use: listEnvironments).requires(.viewEnvironments)
        api.post("environments", use: addEnvironment).requires(.addEnvironment)
        api.post("environments", "power", use: powerEnvironments).requires(.powerVM)
        api.post("environments", "delete", use: deleteEnvironments).requires(.deleteEnvironment)
        api.get("environments", ":id", use: showEnvironment).requires(.viewEnvironments)
        api.get("environments", ":id", "live", use: liveStatus).requires(.viewEnvironments)
        api.patch("environments", ":id", use: editEnvironment).requires(.editEnvironment)
        api.delete("environments", ":id", use: deleteEnvironment).requires(.deleteEnvironment)
        api.post("environments", ":id", "vms", use: addVM).requires(.addVM)
        api.post("environments", ":id", "adopt", use: adopt).requires(.addVM)

        api.post("blueprints", "check", use: checkBlueprint).requires(.addEnvironment)
        api.post("blueprints", "deploy", use: deployBlueprint).requires(.addEnvironment)
        api.get("environments", ":id", "blueprint", use: environmentBlueprint).requires(.viewEnvironments)
        api.post("environments", ":id", "clone", use: cloneEnvironment).requires(.addEnvironment)

        api.get("vms", ":id", use: showVM).requires(.viewVMs)
        api.delete("vms", ":id", use: deleteVM).requires(.deleteVM)
        api.post("vms", ":id", "power", use: powerVM).requires(.powerVM)
        api.post("vms", ":id", "password", use: changePassword).requires(.changeVMPassword)
        api.post("vms", ":id", "network", use: changeNetwork).requires(.changeVMNetwork)

        api.get("jobs", use: listJobs).requires(.viewJobs)
        api.get("jobs", ":id", use: showJob).requires(.viewJobs)
        api.post("jobs", ":id", "cancel", use: cancelJob).requires(.cancelJob)
    }

    private static func id(_ request: Request, _ what: String) throws -> UUID {
        guard let id = request.parameters.get("id", as: UUID.self) else { throw FlotillaError.notFound("no such \(what)") }
        return id
    }

    private static func accepted(_ jobID: UUID, _ request: Request) async throws -> Response {
        try await JobReference(jobID: jobID).encodeResponse(status: .accepted, for: request)
    }

    // MARK: Connections and roles

    @Sendable static func listConnections(request: Request) async throws -> [ConnectionBody] {
        try await VSphereConnection.query(on: request.db).sort(\.$name).all().map(ConnectionBody.init)
    }

    @Sendable static func addConnection(request: Request) async throws -> Response {
        let connection = try await request.connections.add(try request.content.decode(Connections.Input.self))
        return try await ConnectionBody(connection).encodeResponse(status: .created, for: request)
    }

    @Sendable static func testConnection(request: Request) async throws -> Connections.Report {
        try await request.connections.test(try request.content.decode(Connections.Input.self))
    }

    @Sendable static func templates(request: Request) async throws -> [String] {
        try await request.connections.templates(of: try id(request, "connection"))
    }

    @Sendable static func deleteConnection(request: Request) async throws -> HTTPStatus {
        try await request.connections.delete(try id(request, "connection"))
        return .noContent
    }

    @Sendable static func listRoles(request: Request) async throws -> [RoleBody] {
        try await Role.query(on: request.db).sort(\.$name).all().map(RoleBody.init)
    }

    @Sendable static func addRole(request: Request) async throws -> Response {
        let role = try await request.roles.save(try request.content.decode(Roles.Input.self))
        return try await RoleBody(role).encodeResponse(status: .created, for: request)
    }

    @Sendable static func editRole(request: Request) async throws -> RoleBody {
        guard let role = try await Role.find(try id(request, "role"), on: request.db) else { throw FlotillaError.notFound("no such role") }
        return try RoleBody(try await request.roles.save(try request.content.decode(Roles.Input.self), existing: role))
    }

    // MARK: Environments and VMs

    @Sendable static func listEnvironments(request: Request) async throws -> ListResponse<Environments.Row> {
        let query = QueryParameters(request.url.query)
        return ListResponse(try await request.environments.list(page: try PageRequest(page: query.first("page"), per: query.first("per"))))
    }

    @Sendable static func addEnvironment(request: Request) async throws -> Response {
        let input = try request.content.decode(EnvironmentInput.self)
        let environment = try await request.environments.add(name: input.name, description: input.description ?? "")
        return try await EnvironmentBody(id: try environment.requireID(), name: environment.name, description: environment.description, vms: [])
            .encodeResponse(status: .created, for: request)
    }

    @Sendable static func showEnvironment(request: Request) async throws -> EnvironmentBody {
        let environment = try await request.environments.find(try id(request, "environment"))
        let vms = try await environment.$vms.query(on: request.db).with(\.$role).sort(\.$hostName).all()
        return EnvironmentBody(id: try environment.requireID(), name: environment.name, description: environment.description,
                               vms: try vms.map(VMBody.init))
    }

    @Sendable static func liveStatus(request: Request) async throws -> [LiveStatus.LiveVM] {
        try await request.liveStatus.of(environment: try id(request, "environment"))
    }

    @Sendable static func editEnvironment(request: Request) async throws -> EnvironmentBody {
        let input = try request.content.decode(DescriptionInput.self)
        _ = try await request.environments.edit(try id(request, "environment"), description: input.description)
        return try await showEnvironment(request: request)
    }

    @Sendable static func deleteEnvironment(request: Request) async throws -> Response {
        try await accepted(try await request.environments.delete([try id(request, "environment")]), request)
    }

    @Sendable static func deleteEnvironments(request: Request) async throws -> Response {
        try await accepted(try await request.environments.delete(try request.content.decode(IDs.self).ids), request)
    }

    @Sendable static func powerEnvironments(request: Request) async throws -> Response {
        let input = try request.content.decode(PowerInput.self)
        return try await accepted(try await request.environments.power(input.ids ?? [], action: try PowerAction(parsing: input.action)), request)
    }

    @Sendable static func addVM(request: Request) async throws -> Response {
        let (vm, jobID) = try await request.vms.add(try request.content.decode(VMs.Input.self),
                                                            to: try id(request, "environment"))
        return try await NewVMAnswer(vm: try VMBody(vm), jobID: jobID).encodeResponse(status: .accepted, for: request)
    }

    @Sendable static func adopt(request: Request) async throws -> Response {
        let vms = try await request.vsphereImport.adopt(try request.content.decode(VSphereImport.Input.self), into: try id(request, "environment"))
        return try await vms.map(VMBody.init).encodeResponse(status: .created, for: request)
    }

    @Sendable static func showVM(request: Request) async throws -> VMBody {
        try VMBody(try await request.vms.find(try id(request, "VM")))
    }

    @Sendable static func deleteVM(request: Request) async throws -> Response {
        try await accepted(try await request.vms.delete(try id(request, "VM")), request)
    }

    @Sendable static func powerVM(request: Request) async throws -> Response {
        let input = try request.content.decode(PowerInput.self)
        return try await accepted(try await request.vms.power(try id(request, "VM"), action: try PowerAction(parsing: input.action)), request)
    }

    @Sendable static func changePassword(request: Request) async throws -> Response {
        try await accepted(try await request.vms.changePassword(try id(request, "VM"), try request.content.decode(VMs.PasswordInput.self)), request)
    }

    @Sendable static func changeNetwork(request: Request) async throws -> Response {
        try await accepted(try await request.vms.changeNetwork(try id(request, "VM"), try request.content.decode(VMs.NetworkInput.self)), request)
    }

    // MARK: Blueprints

    struct BlueprintText: Content {
        var blueprint: String
    }

    struct PlannedVM: Content {
        var hostName: String
        var ip: String
        var role: String
    }

    struct CloneInput: Content {
        var name: String
        var range: String
        var password: String?
        var passwordConfirmation: String?
    }

    @Sendable static func checkBlueprint(request: Request) async throws -> [PlannedVM] {
        let blueprint = try Blueprint.parse(try request.content.decode(BlueprintText.self).blueprint)
        return try await request.deployments.check(blueprint).map { PlannedVM(hostName: $0.spec.hostName, ip: $0.spec.ip, role: $0.role) }
    }

    @Sendable static func deployBlueprint(request: Request) async throws -> Response {
        try await request.deployments.deploy(try request.content.decode(Deployments.Input.self)).encodeResponse(status: .accepted, for: request)
    }

    @Sendable static func environmentBlueprint(request: Request) async throws -> BlueprintText {
        BlueprintText(blueprint: try await request.deployments.blueprint(of: try id(request, "environment")).yaml())
    }

    /// "Clone environment": a new environment shaped like this one, under a new name and address range.
    @Sendable static func cloneEnvironment(request: Request) async throws -> Response {
        let input = try request.content.decode(CloneInput.self)
        let blueprint = try await request.deployments.blueprint(of: try id(request, "environment"), name: input.name, range: input.range)
        let deployment = try await request.deployments.deploy(Deployments.Input(
            blueprint: try blueprint.yaml(), password: input.password, passwordConfirmation: input.passwordConfirmation))
        return try await deployment.encodeResponse(status: .accepted, for: request)
    }

    // MARK: Jobs

    @Sendable static func listJobs(request: Request) async throws -> ListResponse<JobBody> {
        let query = QueryParameters(request.url.query)
        let page = try await Jobs.search(query, page: try PageRequest(page: query.first("page"), per: query.first("per")), on: request.db)
        return ListResponse(try page.map { try JobBody($0) })
    }

    @Sendable static func showJob(request: Request) async throws -> JobBody {
        let (job, steps) = try await Jobs.find(try id(request, "job"), on: request.db)
        return try JobBody(job, steps: steps)
    }

    @Sendable static func cancelJob(request: Request) async throws -> JobBody {
        let jobID = try id(request, "job")
        try await request.application.flotilla.jobs.cancel(jobID)
        await request.audit(.operation, action: "job.cancel", result: .success, details: "asked job \(jobID) to stop")
        let (job, steps) = try await Jobs.find(jobID, on: request.db)
        return try JobBody(job, steps: steps)
    }
}

/// Reading jobs for the pages and the API.
enum Jobs {
    static func find(_ id: UUID, on database: any Database) async throws -> (Job, [JobStep]) {
        guard let job = try await Job.find(id, on: database) else { throw FlotillaError.notFound("no such job") }
        return (job, try await job.$steps.query(on: database).sort(\.$position).all())
    }

    /// Newest first, filtered by `status` and `kind` (repeatable).
    static func search(_ query: QueryParameters, page: PageRequest, on database: any Database) async throws -> Page<Job> {
        let statuses = try query.all("status").map { text in
            guard let status = JobStatus(rawValue: text) else {
                throw FlotillaError.validation("status must be one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return status
        }
        let kinds = query.all("kind")
        func filtered() -> QueryBuilder<Job> {
            let builder = Job.query(on: database)
            if !statuses.isEmpty { builder.filter(\.$status ~~ statuses) }
            if !kinds.isEmpty { builder.filter(\.$kind ~~ kinds) }
            return builder
        }
        let total = try await filtered().count()
        let items = try await filtered().sort(\.$createdAt, .descending).range(page.offset..<(page.offset + page.per)).all()
        return Page(items: items, total: total, request: page)
    }
}
