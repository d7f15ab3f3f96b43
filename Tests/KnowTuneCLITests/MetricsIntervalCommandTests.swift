// Checks `knowtune metrics --bootstrap N --minus OTHER`: the plain metrics stay as they were, each metric gains a 95 %
// interval, the paired difference from another model's predictions of the same questions has its own, and files of
// different questions are refused by name.
import Foundation
import KnowTuneTestSupport
import XCTest

final class MetricsIntervalCommandTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = TrainingFixtures.outputDirectory("metrics-intervals")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    private func predictions(_ name: String, _ pairs: [(label: String, predict: String)]) throws -> String {
        let path = folder + "/" + name
        let lines = try pairs.map { String(decoding: try JSONSerialization.data(withJSONObject: ["label": $0.label, "predict": $0.predict]), as: UTF8.self) }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testIntervalsAndPairedDifference() throws {
        let labels = (0..<12).map { "Fact number \($0) is that the river \($0 % 3 == 0 ? "floods" : "flows") every spring." }
        let tuned = try predictions("tuned.jsonl", labels.enumerated().map { ($1, $0 % 4 == 0 ? "The river is long." : $1) })
        let base = try predictions("base.jsonl", labels.map { ($0, "The river is long.") })
        let plain = try KnowTuneRunner.run(["metrics", tuned])
        XCTAssertEqual(plain.status, 0, plain.standardError)
        let run = try KnowTuneRunner.run(["metrics", tuned, "--bootstrap", "400", "--minus", base])
        XCTAssertEqual(run.status, 0, run.standardError)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
        let plainObject = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(plain.standardOutput.utf8)) as? [String: Any])
        let rouge = try XCTUnwrap(plainObject["predict_rouge-1"] as? Double)
        XCTAssertEqual(object["predict_rouge-1"] as? Double ?? .nan, rouge, accuracy: 1e-9)
        let intervals = try XCTUnwrap(object["bootstrap_95"] as? [String: [String: Any]])
        let rougeInterval = try XCTUnwrap(intervals["predict_rouge-1"])
        XCTAssertEqual(rougeInterval["mean"] as? Double ?? .nan, rouge, accuracy: 1e-9)
        XCTAssertLessThan(rougeInterval["lower"] as? Double ?? .nan, rouge)
        XCTAssertGreaterThan(rougeInterval["upper"] as? Double ?? .nan, rouge)
        XCTAssertEqual(rougeInterval["resamples"] as? Int, 400)
        let paired = try XCTUnwrap(object["paired_difference_95"] as? [String: [String: Any]])
        let gain = try XCTUnwrap(paired["predict_bleu-4"])
        XCTAssertGreaterThan(gain["lower"] as? Double ?? .nan, 0, "9 of 12 answers verbatim: a real gain")
        let other = try predictions("other.jsonl", labels.reversed().map { ($0, "x") })
        let mismatch = try KnowTuneRunner.run(["metrics", tuned, "--minus", other])
        XCTAssertEqual(mismatch.status, 1)
        XCTAssertTrue(mismatch.standardError.contains("--minus \(other): not the same questions"), mismatch.standardError)
    }
}
