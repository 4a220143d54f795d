import XCTest

/// Each field with a label (issue 14 item 5) on every template, not only the pages the browser
/// walk opens: a visible field sits inside a `<label>`, is named by a `<label for=…>`, or has
/// an `aria-label`.
final class FormFieldLabelTests: XCTestCase {
    func testEveryVisibleFieldOfEveryTemplateHasALabel() throws {
        let views = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Resources/Views")
            .standardizedFileURL
        let files = try XCTUnwrap(FileManager.default.enumerator(at: views, includingPropertiesForKeys: nil)?.allObjects as? [URL])
        var checked = 0
        for file in files where file.pathExtension == "leaf" {
            let text = try String(contentsOf: file, encoding: .utf8)
            let labelled = Set(text.matches(of: /<label[^>]*\sfor="([^"]+)"/).map { String($0.1) })
            for field in text.matches(of: /<(input|select|textarea)\b[^>]*>/) {
                let tag = String(field.0)
                if tag.range(of: #"type="(hidden|submit|button)""#, options: .regularExpression) != nil { continue }
                checked += 1
                if tag.contains("aria-label=") { continue }
                if let id = tag.firstMatch(of: /\sid="([^"]+)"/).map({ String($0.1) }), labelled.contains(id) { continue }
                let before = text[..<field.range.lowerBound]
                let opened = before.ranges(of: "<label").last?.lowerBound
                let closed = before.ranges(of: "</label>").last?.lowerBound
                if let opened, closed.map({ $0 < opened }) ?? true { continue }
                XCTFail("\(file.lastPathComponent): \(tag) has no label")
            }
        }
        XCTAssertGreaterThan(checked, 50, "the scan found the templates' fields")
    }
}
