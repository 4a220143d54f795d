import Foundation

/// Follows a job until it ends: on a terminal a bar with one line per VM, redrawn in place;
/// otherwise (a pipe, a file, CI) one plain line per change, so logs stay readable.
struct JobFollower {
    let client: APIClient
    /// With `--json` nothing is drawn and the finished job's JSON is printed.
    let json: Bool
    var pollInterval: Duration = .milliseconds(500)

    /// Returns when the job succeeded; throws a failure (exit code 1) when it ended otherwise.
    func follow(_ jobID: String) async throws {
        let display = ProgressDisplay(style: json ? .silent : Terminal.outputIsTerminal ? .bar : .lines)
        while true {
            let fetched = try await client.get(Shapes.Job.self, "/jobs/\(jobID)")
            let job = fetched.value
            display.show(job)
            if job.isFinished {
                display.finish(job)
                if json { Output.json(fetched.json) }
                guard job.status == "succeeded" else {
                    let summary = job.summary.map { $0.isEmpty ? "" : ": \($0)" } ?? ""
                    throw ClientFailure(.failed, "job '\(job.title)' ended \(job.status)\(summary)")
                }
                return
            }
            try await Task.sleep(for: pollInterval)
        }
    }
}

/// Draws a job's progress; one per followed job.
final class ProgressDisplay {
    enum Style {
        case bar, lines, silent
    }

    private let style: Style
    /// Lines drawn last time, which the bar style moves up over to redraw.
    private var drawnLines = 0
    private var printedStatus: [String: String] = [:]
    private var printedPercent: Int?
    private var announced = false
    private static let barWidth = 30
    private static let mostStepLines = 20

    init(style: Style) {
        self.style = style
    }

    func show(_ job: Shapes.Job) {
        switch style {
        case .silent: return
        case .bar: drawBar(job)
        case .lines: printChanges(job)
        }
        fflush(nil)
    }

    /// The last word: how the job ended, and the log of every step that did not succeed.
    func finish(_ job: Shapes.Job) {
        guard style != .silent else { return }
        print("job \(job.status)\(job.summary.map { $0.isEmpty ? "" : ": \($0)" } ?? "")")
        for step in job.steps ?? [] where step.status != "succeeded" {
            let lines = (step.log ?? "").split(separator: "\n").suffix(8)
            guard !lines.isEmpty else { continue }
            print("--- \(Self.label(step)) (\(step.status)):")
            lines.forEach { print("    \($0)") }
        }
        fflush(nil)
    }

    /// How far the job is: settled steps (any state but queued or running) of all steps.
    static func progress(_ job: Shapes.Job) -> (percent: Int, settled: Int, total: Int) {
        let steps = job.steps ?? []
        let settled = steps.filter { !Shapes.Job.activeStates.contains($0.status) }.count
        if steps.isEmpty { return (job.isFinished ? 100 : 0, 0, 0) }
        return (settled * 100 / steps.count, settled, steps.count)
    }

    private static func label(_ step: Shapes.Step) -> String { step.vmName ?? step.title }

    private func printChanges(_ job: Shapes.Job) {
        if !announced {
            print("job \(job.id): \(job.title)")
            announced = true
        }
        for step in job.steps ?? [] {
            let key = "\(step.position ?? 0) \(Self.label(step))"
            guard printedStatus[key] != step.status else { continue }
            printedStatus[key] = step.status
            print("\(Self.label(step)): \(step.status)")
        }
        let (percent, settled, total) = Self.progress(job)
        if printedPercent != percent {
            printedPercent = percent
            print("progress: \(percent) % (\(settled)/\(total) steps)")
        }
    }

    private func drawBar(_ job: Shapes.Job) {
        let (percent, settled, total) = Self.progress(job)
        let filled = Self.barWidth * percent / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: Self.barWidth - filled)
        var lines = ["\(job.title)  [\(bar)] \(percent) %  \(settled)/\(total)  \(job.status)"]
        let steps = job.steps ?? []
        let width = steps.map { Self.label($0).count }.max() ?? 0
        let shown = steps.count <= Self.mostStepLines ? steps : Array(steps.filter { $0.status != "succeeded" }.prefix(Self.mostStepLines))
        lines += shown.map { "  " + Self.label($0).padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.status }
        if shown.count < steps.count { lines.append("  … and \(steps.count - shown.count) more") }
        let columns = Self.terminalColumns
        var text = drawnLines > 0 ? "\r\u{1B}[\(drawnLines)A\u{1B}[J" : ""
        for line in lines { text += String(line.prefix(columns - 1)) + "\n" }
        print(text, terminator: "")
        drawnLines = lines.count
    }

    /// The terminal's width, so no line wraps (a wrapped line would break redrawing in place).
    private static var terminalColumns: Int {
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 10 else { return 80 }
        return Int(size.ws_col)
    }
}
