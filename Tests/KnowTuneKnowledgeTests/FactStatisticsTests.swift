// Tests `knowtune judge`'s fact statistics: facts per answer and the lexical-overlap support rule (stemming,
// stop words, threshold), bad input, and the command's JSON output.
import Foundation
import KnowTuneKnowledge
import KnowTuneTestSupport
import XCTest

final class FactStatisticsTests: XCTestCase {
    let reference = "An apple is an edible fruit produced by an apple tree. Apple trees are cultivated worldwide."

    func testIdenticalPredictionIsFullySupported() {
        let statistics = FactStatistics.evaluate([(reference, reference)])
        XCTAssertEqual(statistics.predictedFacts, 2)
        XCTAssertEqual(statistics.supportedFacts, 2)
        XCTAssertEqual(statistics.supportedShare, 1)
        XCTAssertEqual(statistics.referenceFactsPerAnswer.mean, 2)
    }

    func testParaphraseIsSupportedAndInventedFactIsNot() {
        let prediction = "Apples are edible fruits that grow on an apple tree. The apple tree grows only in polar regions."
        let statistics = FactStatistics.evaluate([(prediction, reference)])
        XCTAssertEqual(statistics.predictedFacts, 2)
        // "apple", "edible", "fruit", "grow", "tree": 4 of 5 content words are in the first reference fact.
        XCTAssertEqual(statistics.supportedFacts, 1)
        XCTAssertEqual(statistics.supportedShare, 0.5)
        XCTAssertEqual(statistics.unsupportedFactsPerAnswer, 1)
        XCTAssertEqual(FactStatistics.evaluate([(prediction, reference)], threshold: 0.4).supportedFacts, 2,
                       "\"apple tree\" is 2 of the second fact's 5 content words")
    }

    func testContentWords() {
        XCTAssertEqual(FactStatistics.contentWords("The Apples' trees are growing in Asia."), ["appl", "tree", "grow", "asia"])
        XCTAssertEqual(FactStatistics.contentWords("It is."), ["it", "is"], "no content word: all words count")
        XCTAssertEqual(FactStatistics.contentWords("苹果是水果"), ["苹", "果", "是", "水"])
    }

    func testMacroAverageAndEmptyInput() {
        let statistics = FactStatistics.evaluate([(reference, reference), ("", reference), ("Bananas are yellow.", reference)])
        XCTAssertEqual(statistics.records, 3)
        XCTAssertEqual(statistics.predictedFactsPerAnswer.minimum, 0)
        XCTAssertEqual(statistics.supportedShare, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(statistics.supportedShareMacro, 0.5, accuracy: 1e-12, "records without predicted facts are left out")
        XCTAssertEqual(FactStatistics.evaluate([]).supportedShare, 0)
    }

    func testJudgeCommandPrintsTheStatistics() throws {
        let path = KnowledgeFixtures.root + "/predictions.jsonl"
        let lines = [["label": reference, "predict": reference], ["label": reference, "predict": "Bananas are yellow."]]
        let text = try lines.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }.joined(separator: "\n")
        try (text + "\nnot json").write(toFile: path, atomically: true, encoding: .utf8)
        let result = try KnowTuneRunner.run(["judge", path])
        XCTAssertEqual(result.status, 0, result.output)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        XCTAssertEqual(object["records"] as? Int, 2)
        XCTAssertEqual(object["predicted_facts"] as? Int, 3)
        XCTAssertEqual(object["supported_facts"] as? Int, 2)
        XCTAssertTrue(result.standardError.contains("skipped 1 bad line"), result.standardError)
        let openai = try KnowTuneRunner.run(["judge", path, "--teacher", "openai"])
        XCTAssertNotEqual(openai.status, 0)
        XCTAssertTrue(openai.standardError.contains("--teacher openai needs --openai_model"), openai.output)
    }
}
