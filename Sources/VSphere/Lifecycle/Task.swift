/// A vSphere Task: the handle of a long-running operation.
public struct VSphereTask: Sendable, Hashable {
    public let reference: ManagedObjectReference
    let client: VSphereClient

    public static func == (lhs: VSphereTask, rhs: VSphereTask) -> Bool { lhs.reference == rhs.reference }
    public func hash(into hasher: inout Hasher) { hasher.combine(reference) }

    public enum State: String, Sendable {
        case queued, running, success, error
    }

    /// A snapshot of `info`.
    public struct Info: Sendable {
        public var state: State
        /// 0...100 while running, when the server reports it.
        public var progress: Int?
        public var result: SOAPElement?
        public var error: Fault?
    }

    public func info() async throws -> Info {
        guard let element = try await client.property("info", of: reference) else {
            throw VSphereError.invalidResponse("task \(reference.value) has no info")
        }
        guard let state = element.child("state").flatMap({ State(rawValue: $0.text) }) else {
            throw VSphereError.invalidResponse("task \(reference.value) without a state")
        }
        return Info(
            state: state,
            progress: element.child("progress")?.intValue,
            result: element.child("result"),
            error: element.child("error").map(SOAPConnection.decodeLocalizedFault)
        )
    }

    /// Polls until the task ends. Returns its result element; a task error is thrown as
    /// `VSphereError.fault` with the task's fault name.
    /// - Parameters:
    ///   - timeout: how long to wait before `VSphereError.taskTimedOut` (the task is not cancelled).
    ///   - progress: called with each new progress value (0...100).
    @discardableResult
    public func wait(
        timeout: Duration = .seconds(600),
        progress: (@Sendable (Int) -> Void)? = nil
    ) async throws -> SOAPElement? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var delay = Duration.milliseconds(50)
        var lastProgress: Int?
        while true {
            let info = try await info()
            if let value = info.progress, value != lastProgress {
                lastProgress = value
                progress?(value)
            }
            switch info.state {
            case .success:
                if lastProgress != 100 { progress?(100) }
                return info.result
            case .error:
                throw VSphereError.fault(info.error ?? Fault(name: "UnknownFault", message: "task \(reference.value) failed"))
            case .queued, .running:
                guard clock.now < deadline else { throw VSphereError.taskTimedOut(task: reference, after: timeout) }
                try await Task.sleep(for: min(delay, deadline - clock.now))
                delay = min(delay * 2, .seconds(2))
            }
        }
    }
}

extension VSphereClient {
    /// Invokes a `*_Task` method and returns its task.
    public func startTask(_ operation: SOAPOperation) async throws -> VSphereTask {
        let returned = try await connection.invokeReturning(operation)
        guard let reference = ManagedObjectReference(returned.first) else {
            throw VSphereError.invalidResponse("\(operation.method) returned no task")
        }
        return VSphereTask(reference: reference, client: self)
    }

    /// Invokes a `*_Task` method and waits for it.
    @discardableResult
    public func runTask(
        _ operation: SOAPOperation,
        timeout: Duration = .seconds(600),
        progress: (@Sendable (Int) -> Void)? = nil
    ) async throws -> SOAPElement? {
        try await startTask(operation).wait(timeout: timeout, progress: progress)
    }
}
