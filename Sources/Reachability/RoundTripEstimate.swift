/// A target's usual round trip and how much it varies, smoothed as RFC 6298 does for TCP's
/// retransmission timer; the sweeper waits `smoothed + 4 × variation` for an answer (between the
/// floor and the ceiling of `SweepSettings`), so a quiet LAN is swept in a fraction of a fixed
/// timeout while a slow or jittery link still gets the patience it needs.
struct RoundTripEstimate: Sendable, Equatable {
    /// Nanoseconds.
    private(set) var smoothed: UInt64
    /// Nanoseconds.
    private(set) var variation: UInt64

    init(firstSample sample: UInt64) {
        smoothed = sample
        variation = sample / 2
    }

    /// RFC 6298 2.3: variation ← ¾ variation + ¼ |smoothed − sample|; smoothed ← ⅞ smoothed + ⅛ sample.
    mutating func add(_ sample: UInt64) {
        let difference = sample > smoothed ? sample - smoothed : smoothed - sample
        variation = variation / 4 * 3 + difference / 4
        smoothed = smoothed / 8 * 7 + sample / 8
    }

    /// How long to wait for the next answer, in nanoseconds.
    var timeout: UInt64 { smoothed + 4 * variation }
}

extension RoundTripEstimate? {
    /// Starts the estimate with its first sample or adds to it.
    mutating func add(_ sample: UInt64) {
        if self == nil { self = RoundTripEstimate(firstSample: sample) } else { self?.add(sample) }
    }
}
