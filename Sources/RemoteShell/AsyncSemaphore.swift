/// Limits how many tasks do something at once; the rest wait in FIFO order.
///
/// Used for channels per connection and handshakes per host, and by the App for its job and
/// probe limits (hence `package`). The limit can be lowered while in use, for when a server
/// turns out to allow fewer channels than configured.
package actor AsyncSemaphore {
    private var limit: Int
    private var inUse = 0
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    private var nextWaiterID: UInt64 = 0

    package init(limit: Int) {
        self.limit = max(1, limit)
    }

    var inUseCount: Int { inUse }

    /// Waits for a permit; throws `CancellationError` if the task is cancelled while waiting.
    package func acquire() async throws {
        if inUse < limit, waiters.isEmpty {
            inUse += 1
            return
        }
        let id = nextWaiterID
        nextWaiterID += 1
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    waiters.append((id, continuation))
                }
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    package func release() {
        inUse -= 1
        resumeWaiters()
    }

    /// Lowers the limit to `newLimit` (at least 1); permits already handed out stay valid.
    func lowerLimit(to newLimit: Int) {
        limit = max(1, min(limit, newLimit))
    }

    /// Runs `body` holding a permit.
    package func withPermit<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await acquire()
        do {
            let value = try await body()
            release()
            return value
        } catch {
            release()
            throw error
        }
    }

    private func resumeWaiters() {
        while inUse < limit, !waiters.isEmpty {
            inUse += 1
            waiters.removeFirst().continuation.resume()
        }
    }

    private func cancelWaiter(_ id: UInt64) {
        if let index = waiters.firstIndex(where: { $0.id == id }) {
            waiters.remove(at: index).continuation.resume(throwing: CancellationError())
        }
    }
}
