// Implements the checks of every metric against the Python reference values in
// Fixtures/metric_cases.json, to the rounded 4 decimals LF stores and to 1e-12 unrounded; does not
// regenerate the fixtures (run Fixtures/make_metric_fixtures.py for that).

import XCTest
@testable import KnowTuneEvaluation

final class MetricFixtureTests: XCTestCase {
    func testFixtureHasEnoughCases() throws {
        let document = try MetricFixtures.document()
        XCTAssertGreaterThanOrEqual(document.cases.count, 40)
    }

    func testJiebaTokensMatchReferenceForExactCases() throws {
        let splitter = JiebaStyleWordSplitter()
        for fixture in try MetricFixtures.document().cases where !fixture.approximateJieba {
            XCTAssertEqual(codePoints(splitter.split(fixture.predict)), codePoints(fixture.predictTokens),
                           "predict tokens of \(fixture.name)")
            XCTAssertEqual(codePoints(splitter.split(fixture.label)), codePoints(fixture.labelTokens),
                           "label tokens of \(fixture.name)")
        }
    }

    func testBLEUMatchesNLTKOnEveryCase() throws {
        // BLEU is character-level, so it is exact even where jieba is approximated.
        for fixture in try MetricFixtures.document().cases {
            let bleu = BLEUScore.characterBLEU4(prediction: fixture.predict, label: fixture.label)
            XCTAssertEqual(bleu, fixture.raw.bleu4, accuracy: 1e-12, fixture.name)
            XCTAssertEqual(PythonFloatArithmetic.round(bleu * 100, digits: 4), fixture.rounded.bleu4, fixture.name)
        }
    }

    func testROUGEMatchesRougeChinese() throws {
        for fixture in try MetricFixtures.document().cases where !fixture.approximateJieba {
            let rouge = ROUGEScore.scores(prediction: fixture.predict, label: fixture.label)
            XCTAssertEqual(rouge.rouge1, fixture.raw.rouge1, accuracy: 1e-12, "rouge-1 \(fixture.name)")
            XCTAssertEqual(rouge.rouge2, fixture.raw.rouge2, accuracy: 1e-12, "rouge-2 \(fixture.name)")
            XCTAssertEqual(rouge.rougeL, fixture.raw.rougeL, accuracy: 1e-12, "rouge-l \(fixture.name)")
        }
    }

    func testROUGEOnReferenceTokensMatchesEvenForCJK() throws {
        // Given jieba's own tokens, the ROUGE arithmetic is exact for the approximate cases too.
        for fixture in try MetricFixtures.document().cases where fixture.approximateJieba {
            let rouge = ROUGEScore.scores(
                predictionTokens: fixture.predictTokens.map { Array($0.unicodeScalars) },
                labelTokens: fixture.labelTokens.map { Array($0.unicodeScalars) })
            XCTAssertEqual(rouge.rouge1, fixture.raw.rouge1, accuracy: 1e-12, fixture.name)
            XCTAssertEqual(rouge.rouge2, fixture.raw.rouge2, accuracy: 1e-12, fixture.name)
            XCTAssertEqual(rouge.rougeL, fixture.raw.rougeL, accuracy: 1e-12, fixture.name)
        }
    }

    func testMETEORMatchesNLTKWithoutWordNet() throws {
        for fixture in try MetricFixtures.document().cases where !fixture.approximateJieba {
            let stemmed = METEORScore.score(prediction: fixture.predict, label: fixture.label)
            let exact = METEORScore.score(prediction: fixture.predict, label: fixture.label, stages: .exact)
            XCTAssertEqual(stemmed, fixture.raw.meteor, accuracy: 1e-12, "meteor \(fixture.name)")
            XCTAssertEqual(exact, fixture.raw.meteorExact, accuracy: 1e-12, "meteor exact \(fixture.name)")
        }
    }

    func testRoundedExampleScoresMatchLLaMAFactory() throws {
        let scorer = PredictionScorer()
        for fixture in try MetricFixtures.document().cases where !fixture.approximateJieba {
            let scores = scorer.score(prediction: fixture.predict, label: fixture.label)
            let expected = ExampleScores(
                bleu4: fixture.rounded.bleu4, rouge1: fixture.rounded.rouge1, rouge2: fixture.rounded.rouge2,
                rougeL: fixture.rounded.rougeL, meteor: fixture.rounded.meteor)
            XCTAssertEqual(scores, expected, fixture.name)
        }
    }

    func testAggregateEqualsNumpyMeanBitForBit() throws {
        let document = try MetricFixtures.document()
        let pairs = document.cases.filter { !$0.approximateJieba }.map { (prediction: $0.predict, label: $0.label) }
        let metrics = try PredictionMetrics.evaluate(pairs)
        // Round-tripping through the JSON keys also checks that they are LF's.
        let encoded = try JSONDecoder().decode([String: Double].self, from: JSONEncoder().encode(metrics))
        XCTAssertEqual(encoded, document.aggregateOverExactCases)
    }

    func testTokenizationTableMatchesJieba() throws {
        let splitter = JiebaStyleWordSplitter()
        for entry in try MetricFixtures.document().tokenization {
            XCTAssertEqual(codePoints(splitter.split(entry.text)), codePoints(entry.tokens), entry.text.debugDescription)
        }
    }

    func testPorterStemsMatchNLTK() throws {
        let stemmer = PorterStemmer()
        var mismatches: [String] = []
        let stems = try MetricFixtures.porterStems()
        for (word, stem) in stems where stemmer.stem(word) != stem {
            mismatches.append("\(word): expected \(stem), got \(stemmer.stem(word))")
        }
        XCTAssertGreaterThan(stems.count, 1000)
        XCTAssertEqual(mismatches, [], "\(mismatches.count) of \(stems.count) stems differ")
    }
}
