// Implements loading of the reference values written by Fixtures/make_metric_fixtures.py (nltk 3.7,
// rouge-chinese 1.0.3, jieba 0.42.1); does not generate them. Fixtures are found relative to this
// file (#filePath), so the package needs no resource declaration.

import Foundation
import XCTest

struct MetricFixtureDocument: Decodable {
    struct Scores: Decodable {
        var bleu4: Double
        var rouge1: Double
        var rouge2: Double
        var rougeL: Double
        var meteor: Double
        var meteorExact: Double

        enum CodingKeys: String, CodingKey {
            case bleu4 = "bleu-4"
            case rouge1 = "rouge-1"
            case rouge2 = "rouge-2"
            case rougeL = "rouge-l"
            case meteor
            case meteorExact = "meteor_exact"
        }
    }

    struct Case: Decodable {
        var name: String
        var predict: String
        var label: String
        var predictTokens: [String]
        var labelTokens: [String]
        var approximateJieba: Bool
        var rounded: Scores
        var raw: Scores

        enum CodingKeys: String, CodingKey {
            case name, predict, label, rounded, raw
            case predictTokens = "predict_tokens"
            case labelTokens = "label_tokens"
            case approximateJieba = "approximate_jieba"
        }
    }

    struct Tokenization: Decodable {
        var text: String
        var tokens: [String]
    }

    var cases: [Case]
    var aggregateOverExactCases: [String: Double]
    var tokenization: [Tokenization]

    enum CodingKeys: String, CodingKey {
        case cases, tokenization
        case aggregateOverExactCases = "aggregate_over_exact_cases"
    }
}

enum MetricFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func document() throws -> MetricFixtureDocument {
        let data = try Data(contentsOf: directory.appendingPathComponent("metric_cases.json"))
        return try JSONDecoder().decode(MetricFixtureDocument.self, from: data)
    }

    static func porterStems() throws -> [String: String] {
        let data = try Data(contentsOf: directory.appendingPathComponent("porter_stems.json"))
        return try JSONDecoder().decode([String: String].self, from: data)
    }
}

/// Compares code points, not Swift's canonical-equivalence `String ==`.
func codePoints(_ strings: [String]) -> [[UInt32]] {
    strings.map { $0.unicodeScalars.map(\.value) }
}
