import NIOConcurrencyHelpers
import Vapor

/// Refused agent reports are audited, but an address sending forgeries in a loop must not
/// flood the audit log: at most `burst` entries per address per `window` (on this instance);
/// the others are counted, and the count goes into that address's next entry.
final class RefusalAuditLimit: Sendable {
    static let burst = 10
    static let window: TimeInterval = 60
    /// Beyond this many addresses, windows that are over are forgotten.
    static let trackedAddresses = 10_000

    enum Decision: Equatable {
        /// Write an entry; `unlogged` refusals from the address were counted since its last one.
        case log(unlogged: Int)
        case count
    }

    private struct Window {
        var start: Date
        var logged: Int
        var unlogged: Int
    }

    private let windows = NIOLockedValueBox([String: Window]())

    func admit(_ address: String, now: Date = Date()) -> Decision {
        windows.withLockedValue { windows in
            if windows.count > Self.trackedAddresses {
                windows = windows.filter { now.timeIntervalSince($0.value.start) < Self.window || $0.value.unlogged > 0 }
            }
            var current = windows[address] ?? Window(start: now, logged: 0, unlogged: 0)
            if now.timeIntervalSince(current.start) >= Self.window {
                current.start = now
                current.logged = 0
            }
            defer { windows[address] = current }
            guard current.logged < Self.burst else {
                current.unlogged += 1
                return .count
            }
            current.logged += 1
            let unlogged = current.unlogged
            current.unlogged = 0
            return .log(unlogged: unlogged)
        }
    }
}

extension Application {
    private struct RefusalAuditLimitKey: StorageKey, LockKey {
        typealias Value = RefusalAuditLimit
    }

    var agentRefusalLimit: RefusalAuditLimit {
        locks.lock(for: RefusalAuditLimitKey.self).withLock {
            if let existing = storage[RefusalAuditLimitKey.self] { return existing }
            let created = RefusalAuditLimit()
            storage[RefusalAuditLimitKey.self] = created
            return created
        }
    }
}
