// Implements checks of reading generated_predictions.jsonl: good lines, each kind of bad line by
// number, blank lines, CRLF and separators inside strings; does not score anything.

import Foundation
import XCTest
@testable import KnowTuneEvaluation
import KnowTuneTensor

final class PredictionFileTests: XCTestCase {
    func testReadsLLaMAFactoryFormat() {
        // LF joins lines with "\n" and writes no trailing newline; ensure_ascii=False keeps UTF-8.
        let text = #"{"label": "The cat sat.", "predict": "A cat sat."}"# + "\n"
            + #"{"label": "北京\n天安门", "predict": "line\u2028sep"}"#
        let file = PredictionFile(parsing: Data(text.utf8))
        XCTAssertEqual(file.records, [
            PredictionRecord(label: "The cat sat.", predict: "A cat sat."),
            PredictionRecord(label: "北京\n天安门", predict: "line\u{2028}sep"),
        ])
        XCTAssertEqual(file.recordLines, [1, 2])
        XCTAssertEqual(file.skippedLineCount, 0)
    }

    func testBadLinesAreSkippedAndNumbered() {
        let lines = [
            #"{"label": "a", "predict": "b"}"#,
            #"{"label": "a", "predict": "b""#,
            #"{"label": "a"}"#,
            #"{"label": 3, "predict": "b"}"#,
            #"["a", "b"]"#,
            "",
            #"{"label": "c", "predict": null}"#,
            #"{"label": "ok", "predict": "fine", "extra": 1}"#,
        ]
        var data = Data(lines.joined(separator: "\n").utf8)
        data.append(contentsOf: [0x0A, 0xFF, 0xFE, 0x0A])  // line 9: invalid UTF-8
        let file = PredictionFile(parsing: data)
        XCTAssertEqual(file.records.map(\.label), ["a", "ok"])
        XCTAssertEqual(file.recordLines, [1, 8])
        XCTAssertEqual(file.skipped.map(\.line), [2, 3, 4, 5, 7, 9])
        XCTAssertEqual(file.skippedLineCount, 6)
        XCTAssertEqual(file.skipped[1], .missingKey(line: 3, key: "predict"))
        XCTAssertEqual(file.skipped[2], .notAString(line: 4, key: "label"))
        XCTAssertEqual(file.skipped[3], .notAnObject(line: 5))
        XCTAssertEqual(file.skipped[4], .notAString(line: 7, key: "predict"))
        XCTAssertEqual(file.skipped[5], .invalidUTF8(line: 9))
        if case .invalidJSON(let line, _) = file.skipped[0] {
            XCTAssertEqual(line, 2)
        } else {
            XCTFail("expected invalid JSON on line 2, got \(file.skipped[0])")
        }
    }

    func testCRLFAndTrailingNewlineAreAccepted() {
        let text = #"{"label": "a", "predict": "b"}"# + "\r\n" + #"{"label": "c", "predict": "d"}"# + "\n"
        let file = PredictionFile(parsing: Data(text.utf8))
        XCTAssertEqual(file.records.count, 2)
        XCTAssertEqual(file.skippedLineCount, 0)
    }

    func testMissingFileThrowsTypedError() {
        let url = URL(fileURLWithPath: "/nonexistent/knowtune/generated_predictions.jsonl")
        XCTAssertThrowsError(try PredictionFile(contentsOf: url)) { error in
            guard case .fileUnreadable(let path, _) = error as? KnowTuneError else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertEqual(path, url.path)
        }
    }

    func testEvaluateRecords() throws {
        let file = PredictionFile(parsing: Data(#"{"label": "The cat sat on the mat.", "predict": "The cat sat on the mat. The cat sat."}"#.utf8))
        let metrics = try PredictionMetrics.evaluate(file.records)
        XCTAssertEqual(metrics.bleu4, 62.2672)
        XCTAssertEqual(metrics.rouge1, 100.0)
        XCTAssertEqual(metrics.rouge2, 85.7143)
        XCTAssertEqual(metrics.rougeL, 77.7778)
    }
}
