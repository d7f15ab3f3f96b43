// Implements fixtures for the KnowTuning data-construction tests: small record sets (the paper's figure example,
// Dolly records, bad input), dataset folders with a dataset_info.json, a tiny random LLaMA with SmolLM2's real
// tokenizer, a deterministic stand-in scorer, and a runner for `knowtune` alone or under mpirun.
import Foundation
import KnowTuneKnowledge
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneModel

enum KnowledgeFixtures {
    static let root = TestPaths.scratchFolder("knowledge-tests")

    /// The answer of the paper's Fig. 2, and more records with distinct, editable facts.
    static let records: [[String: String]] = [
        ["instruction": "What is an apple?", "input": "",
         "output": "An apple is an edible fruit produced by an apple tree. Apple trees are cultivated worldwide. The tree originated in Central Asia."],
        ["instruction": "Who was Marie Curie?", "input": "",
         "output": "Marie Curie was a physicist born in Warsaw in 1867. She won the Nobel Prize twice; she is the only person to win it in two sciences. She died in July 1934."],
        ["instruction": "What is the Danube?", "input": "",
         "output": "The Danube is the second-longest river in Europe. It flows through 10 countries, including Germany, Austria, and Hungary. It ends in the Black Sea."],
        ["instruction": "Tell me about Mount Everest.", "input": "",
         "output": "Mount Everest is the highest mountain on Earth. It is 8,849 metres tall. Edmund Hillary and Tenzing Norgay reached the summit in May 1953."],
        ["instruction": "What is photosynthesis?", "input": "Answer briefly.",
         "output": "Photosynthesis is the process plants use to make sugar from light. It is done in chloroplasts, and it is a source of oxygen."],
        ["instruction": "Describe Python.", "input": "",
         "output": "Python is a programming language created by Guido van Rossum. It was first released in 1991. It can be used for web development, data science, and automation."],
    ]

    /// Bad input: a single-fact answer, an empty answer, Chinese and Russian text, punctuation only.
    static let badRecords: [[String: String]] = [
        ["instruction": "Is water wet?", "input": "", "output": "Yes, water is wet."],
        ["instruction": "Say nothing.", "input": "", "output": ""],
        ["instruction": "苹果是什么？", "input": "", "output": "苹果是一种水果。苹果树在世界各地种植。"],
        ["instruction": "Что такое Волга?", "input": "", "output": "Волга — самая длинная река Европы. Её длина 3530 километров."],
        ["instruction": "???", "input": "", "output": "... !!! ---"],
    ]

    /// A predictions file (`{"label", "predict"}` per line) named `name`, for the judge.
    static func predictions(_ name: String, _ rows: [(label: String, predict: String)]) throws -> String {
        let path = root + "/\(name).jsonl"
        let lines = try rows.map { String(decoding: try JSONSerialization.data(withJSONObject: ["label": $0.label, "predict": $0.predict],
                                                                                 options: [.sortedKeys]), as: UTF8.self) }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func sourceRecords(_ rows: [[String: String]]) -> [SourceRecord] {
        rows.enumerated().map { SourceRecord(index: $0.offset, instruction: $0.element["instruction"] ?? "", input: $0.element["input"] ?? "",
                                             output: $0.element["output"] ?? "") }
    }

    /// A fresh dataset folder holding `rows` as `qa/<name>.json` registered as `name`, plus two unrelated entries
    /// that registration must keep.
    static func dataDirectory(_ label: String, name: String = "toy_train", rows: [[String: String]] = records) throws -> String {
        let folder = root + "/data-\(label)"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder + "/qa", withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: folder + "/qa/\(name).json"))
        let registry = """
            {
              "other_first": {
                "file_name": "other.json",
                "file_sha1": "abc",
                "columns": {
                  "prompt": "q",
                  "response": "a"
                }
              },
              "\(name)": {
                "file_name": "qa/\(name).json",
                "columns": {
                  "prompt": "instruction",
                  "query": "input",
                  "response": "output"
                }
              },
              "other_last": {
                "file_name": "ränkïng.json",
                "ranking": true,
                "num_samples": 12
              }
            }

            """
        try Data(registry.utf8).write(to: URL(fileURLWithPath: folder + "/dataset_info.json"))
        return folder
    }

    static func tinyModel() throws -> String { try TinyGGUFModel.path(in: root) }

    /// Reads a JSON array file.
    static func jsonArray(_ path: String) throws -> [[String: Any]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[String: Any]])
    }
}

/// A deterministic stand-in for the model: a fact's "perplexity" is its length in characters, so the longest
/// facts are the "hardest". Counts its calls.
final class LengthScorer: FactScoring {
    let identity = "length-scorer"
    private(set) var calls = 0

    func perplexities(instruction: String, input: String, facts: [String]) throws -> [Double] {
        calls += 1
        return facts.map { Double($0.count) }
    }
}
