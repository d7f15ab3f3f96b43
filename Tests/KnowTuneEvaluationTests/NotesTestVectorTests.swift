// Implements LLaMA-Factory's metric test vectors (computed with
// jieba 0.42.1, rouge-chinese 1.0.3 and nltk 3.7) and hand-derived edge cases; does not depend on
// the generated fixtures.

import XCTest
@testable import KnowTuneEvaluation
import KnowTuneTensor

final class NotesTestVectorTests: XCTestCase {
    private let scorer = PredictionScorer()

    private func assertScores(
        _ prediction: String, _ label: String, rouge1: Double, rouge2: Double, rougeL: Double, bleu4: Double,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        let scores = scorer.score(prediction: prediction, label: label)
        XCTAssertEqual(scores.rouge1, rouge1, "rouge-1", file: file, line: line)
        XCTAssertEqual(scores.rouge2, rouge2, "rouge-2", file: file, line: line)
        XCTAssertEqual(scores.rougeL, rougeL, "rouge-l", file: file, line: line)
        XCTAssertEqual(scores.bleu4, bleu4, "bleu-4", file: file, line: line)
    }

    func testSleepTraining() {
        assertScores(
            "Sleep training teaches babies to sleep on their own.",
            "Sleep training typically refers to the method by which babies are taught to sleep on their own.",
            rouge1: 66.6667, rouge2: 46.1538, rougeL: 64.2857, bleu4: 38.7517)
    }

    func testRepeatedSentenceShowsSetSemantics() {
        // Duplicated n-grams do not lower rouge-1; rouge-l is LCS 7 over 11 and 7 words.
        assertScores("The cat sat on the mat. The cat sat.", "The cat sat on the mat.",
                     rouge1: 100.0, rouge2: 85.7143, rougeL: 77.7778, bleu4: 62.2672)
    }

    func testEmptyPrediction() {
        assertScores("", "Some reference.", rouge1: 0, rouge2: 0, rougeL: 0, bleu4: 0)
    }

    func testNoOverlap() {
        assertScores("Yes", "No", rouge1: 0, rouge2: 0, rougeL: 0, bleu4: 0)
    }

    func testWhitespaceOnlySidesScoreZeroROUGE() {
        XCTAssertEqual(ROUGEScore.scores(prediction: " \n\t", label: "text"), .zero)
        XCTAssertEqual(ROUGEScore.scores(prediction: "text", label: "\u{3000}"), .zero)
        XCTAssertEqual(ROUGEScore.scores(prediction: "", label: ""), .zero)
    }

    func testIdenticalTextScoresFullMarksExceptMETEORPenalty() {
        let text = "The quick brown fox jumps over the lazy dog."
        let scores = scorer.score(prediction: text, label: text)
        XCTAssertEqual(scores.bleu4, 100)
        XCTAssertEqual(scores.rouge1, 100)
        XCTAssertEqual(scores.rouge2, 100)
        XCTAssertEqual(scores.rougeL, 100)
        // One chunk over 10 matches: penalty 0.5·0.1³ = 0.0005.
        XCTAssertEqual(scores.meteor, 99.95)
    }

    func testSingleCharacterBLEUUsesMethod3() {
        // p1 = 1, p2..p4 smoothed to 1/2, 1/4, 1/8: exp((0 − ln2 − 2ln2 − 3ln2)/4) = 2^-1.5.
        XCTAssertEqual(BLEUScore.characterBLEU4(prediction: "a", label: "a"), 0.3535533905932738, accuracy: 1e-15)
    }

    func testBrevityPenalty() {
        XCTAssertEqual(BLEUScore.brevityPenalty(referenceLength: 10, hypothesisLength: 11), 1)
        XCTAssertEqual(BLEUScore.brevityPenalty(referenceLength: 10, hypothesisLength: 0), 0)
        XCTAssertEqual(BLEUScore.brevityPenalty(referenceLength: 10, hypothesisLength: 5), exp(-1.0))
    }

    func testModifiedPrecisionClipsRepeats() {
        // NLTK's docstring example: 2 of 7 "the" survive clipping.
        let hypothesis = Array(repeating: "the", count: 7)
        let references = ["the cat is on the mat", "there is a cat on the mat"].map { $0.split(separator: " ").map(String.init) }
        let precision = BLEUScore.modifiedPrecision(references: references, hypothesis: hypothesis, order: 1)
        XCTAssertEqual(precision.numerator, 2)
        XCTAssertEqual(precision.denominator, 7)
    }

    func testEmptyWordFromWhitespaceOnlySentenceCounts() {
        // "a\n\nb" → jieba "a \n \n b" → sentences "a", " ", " b" → words a, "", b.
        let text = PythonText.codePoints("a \n \n b")
        XCTAssertEqual(ROUGESentenceSplitter.words(text).map { PythonText.string($0) }, ["a", "", "b"])
    }

    func testSentenceCutKeepsClosingQuotes() {
        let cut = ROUGESentenceSplitter.cutSentences(PythonText.codePoints("好。”他说？x"))
        XCTAssertEqual(PythonText.string(cut), "好。”\n他说？\nx")
    }

    func testMETEORChunksAndStems() {
        // "cats sat" vs "the cat sat": exact "sat", then stem "cat"; one chunk of 2 matches.
        let score = METEORScore.singleMETEOR(reference: ["the", "cat", "sat"], hypothesis: ["cats", "sat"])
        let precision = 1.0, recall = 2.0 / 3.0
        let fMean = precision * recall / (0.9 * precision + (1 - 0.9) * recall)
        XCTAssertEqual(score, (1 - 0.5 * pow(0.5, 3.0)) * fMean)
        XCTAssertEqual(METEORScore.singleMETEOR(reference: ["the", "cat", "sat"], hypothesis: ["cats", "sat"], stages: .exact),
                       (1 - 0.5) * (0.5 * (1.0 / 3.0) / (0.9 * 0.5 + (1 - 0.9) * (1.0 / 3.0))))
        XCTAssertEqual(METEORScore.singleMETEOR(reference: [], hypothesis: ["a"]), 0)
        XCTAssertEqual(METEORScore.meteor(references: [["x"], ["a"]], hypothesis: ["a"]), 0.5)
    }

    func testAveragingNoExamplesThrows() {
        XCTAssertThrowsError(try PredictionMetrics(averaging: [])) { error in
            XCTAssertEqual(error as? KnowTuneError, .invalidInput(PredictionMetrics.noExamplesMessage))
        }
    }

    func testMetricsJSONKeys() throws {
        let metrics = PredictionMetrics(bleu4: 1, rouge1: 2, rouge2: 3, rougeL: 4, meteor: 5)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try encoder.encode(metrics), as: UTF8.self)
        XCTAssertEqual(json, #"{"predict_bleu-4":1,"predict_meteor":5,"predict_rouge-1":2,"predict_rouge-2":3,"predict_rouge-l":4}"#)
    }

    func testLowercaseFollowsPythonFinalSigma() {
        // CPython: "ΣΑΣ ΟΔΟΣ.".lower() == "σας οδος." with final sigmas; Swift's lowercased() has none.
        XCTAssertEqual(PythonText.lowercased("ΣΑΣ ΟΔΟΣ.").unicodeScalars.map(\.value),
                       [0x3C3, 0x3B1, 0x3C2, 0x20, 0x3BF, 0x3B4, 0x3BF, 0x3C2, 0x2E])
        XCTAssertEqual(PythonText.lowercased("Σ"), "σ")
        XCTAssertEqual(PythonText.lowercased("İ").unicodeScalars.map(\.value), [0x69, 0x307])
    }
}
