/// A unified diff (`diff -u` style, three lines of context) of two texts, line by line, for the
/// wizard's preview and the audit log. Built on the standard library's `difference(from:)`.
enum UnifiedDiff {
    static func make(old: String?, new: String, path: String, context: Int = 3) -> String {
        let oldLines = lines(old ?? "")
        let newLines = lines(new)
        let difference = newLines.difference(from: oldLines)
        guard !difference.isEmpty else { return "" }
        var removed = Set<Int>()
        var inserted = Set<Int>()
        for change in difference {
            switch change {
            case .remove(let offset, _, _): removed.insert(offset)
            case .insert(let offset, _, _): inserted.insert(offset)
            }
        }
        // Walk both texts together: an edit script of (kind, old index, new index).
        enum Line {
            case same(Int, Int)
            case removed(Int)
            case added(Int)
        }
        var script: [Line] = []
        var oldIndex = 0
        var newIndex = 0
        while oldIndex < oldLines.count || newIndex < newLines.count {
            if oldIndex < oldLines.count, removed.contains(oldIndex) {
                script.append(.removed(oldIndex))
                oldIndex += 1
            } else if newIndex < newLines.count, inserted.contains(newIndex) {
                script.append(.added(newIndex))
                newIndex += 1
            } else {
                script.append(.same(oldIndex, newIndex))
                oldIndex += 1
                newIndex += 1
            }
        }
        let changed = script.indices.filter { if case .same = script[$0] { return false } else { return true } }
        var hunks: [ClosedRange<Int>] = []
        for index in changed {
            let range = max(0, index - context)...min(script.count - 1, index + context)
            if let last = hunks.last, range.lowerBound <= last.upperBound + 1 {
                hunks[hunks.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                hunks.append(range)
            }
        }
        var output = "--- \(old == nil ? "/dev/null" : path)\n+++ \(path)\n"
        for hunk in hunks {
            var oldStart: Int?
            var newStart: Int?
            var oldCount = 0
            var newCount = 0
            var body = ""
            for line in script[hunk] {
                switch line {
                case .same(let o, let n):
                    oldStart = oldStart ?? o
                    newStart = newStart ?? n
                    oldCount += 1
                    newCount += 1
                    body += " \(oldLines[o])\n"
                case .removed(let o):
                    oldStart = oldStart ?? o
                    oldCount += 1
                    body += "-\(oldLines[o])\n"
                case .added(let n):
                    newStart = newStart ?? n
                    newCount += 1
                    body += "+\(newLines[n])\n"
                }
            }
            let oldFrom = oldCount == 0 ? (oldStart ?? 0) : (oldStart ?? 0) + 1
            let newFrom = newCount == 0 ? (newStart ?? 0) : (newStart ?? 0) + 1
            output += "@@ -\(oldFrom),\(oldCount) +\(newFrom),\(newCount) @@\n" + body
        }
        return output
    }

    private static func lines(_ text: String) -> [Substring] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        return lines
    }
}
