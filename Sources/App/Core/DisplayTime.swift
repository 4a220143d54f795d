import Foundation

/// Formats stored UTC times for people, in the configured display zone.
public struct DisplayTime: Sendable {
    public let timeZone: TimeZone

    public init(timeZone: TimeZone) {
        self.timeZone = timeZone
    }

    /// `2026-11-27 17:20:05 UTC`: the time in the display zone, named, as pages show times.
    public func string(_ date: Date) -> String {
        "\(plain(date)) \(timeZone.identifier)"
    }

    /// `2026-11-27 17:20:05` in the display zone, for files whose header names the zone.
    public func plain(_ date: Date) -> String {
        date.formatted(
            Date.VerbatimFormatStyle(
                format:
                    "\(year: .defaultDigits)-\(month: .twoDigits)-\(day: .twoDigits) \(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased)):\(minute: .twoDigits):\(second: .twoDigits)",
                timeZone: timeZone, calendar: Calendar(identifier: .gregorian)))
    }

    /// The value a `datetime-local` input shows for a date.
    public func inputValue(_ date: Date) -> String {
        date.formatted(
            Date.VerbatimFormatStyle(
                format:
                    "\(year: .defaultDigits)-\(month: .twoDigits)-\(day: .twoDigits)T\(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased)):\(minute: .twoDigits)",
                timeZone: timeZone, calendar: Calendar(identifier: .gregorian)))
    }

    /// ISO 8601 in UTC, the form the API writes times in.
    public static func iso(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle())
    }

    /// Parses ISO 8601 with an offset, with or without fractional seconds.
    public static func parseISO(_ text: String) -> Date? {
        (try? Date.ISO8601FormatStyle().parse(text))
            ?? (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
    }
}
