import Vapor

/// `/api/v1/ssh-keys`: the platform's SSH keys (public halves only) and their rotation (SPEC BEY-9).
enum SSHKeysAPI {
    static func register(_ api: any RoutesBuilder) {
        let keys = api.grouped("ssh-keys")
        keys.get(use: list).requires(.viewSettings)
        keys.post("rotate", use: rotate).requires(.rotateSSHKeys)
    }

    @Sendable static func list(request: Request) async throws -> [SSHKeys.Row] {
        try await request.sshKeys.list()
    }

    struct Rotation: Content {
        var key: SSHKeys.Row
        var jobID: UUID
    }

    /// A new key, and the job that moves every VM to it (one step per VM).
    @Sendable static func rotate(request: Request) async throws -> Response {
        let (key, jobID) = try await request.sshKeys.rotate()
        return try await Rotation(key: key, jobID: jobID).encodeResponse(status: .accepted, for: request)
    }
}
