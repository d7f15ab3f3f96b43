// `knowtune train --do_predict` through the CLI on the tiny model: 2 ranks write the same predictions file as 1 rank
// under greedy decoding (also on a bf16 / f16 base), seeded sampling is reproducible, and the result files carry
// LLaMA-Factory's keys.
import Foundation
import KnowTuneTestSupport
import XCTest

final class PredictCommandTests: XCTestCase {
    private func predictArguments(output: String, extra: [String] = []) throws -> [String] {
        [
            "train", "--stage", "sft", "--model_name_or_path", try TrainingFixtures.tinyModel(), "--do_predict",
            "--dataset", "tiny_train", "--dataset_dir", try TrainingFixtures.dataDirectory(), "--template", "alpaca",
            "--max_samples", "10", "--per_device_eval_batch_size", "3", "--predict_with_generate", "--max_new_tokens", "12",
            "--output_dir", output,
        ] + extra
    }

    private func predictions(_ folder: String) throws -> String {
        try String(contentsOfFile: folder + "/generated_predictions.jsonl", encoding: .utf8)
    }

    func testTwoRanksWriteTheSameGreedyPredictionsAsOneRank() throws {
        let one = TrainingFixtures.outputDirectory("predict-one"), two = TrainingFixtures.outputDirectory("predict-two")
        let single = try KnowTuneRunner.run(try predictArguments(output: one, extra: ["--do_sample", "false"]))
        XCTAssertEqual(single.status, 0, single.standardError)
        let double = try KnowTuneRunner.run(try predictArguments(output: two, extra: ["--do_sample", "false"]), ranks: 2)
        XCTAssertEqual(double.status, 0, double.standardError)
        let text = try predictions(one)
        XCTAssertEqual(text, try predictions(two))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.count, 10, "one line per example, no trailing newline")
        XCTAssertTrue(lines.allSatisfy { $0.hasPrefix("{\"label\": ") && $0.contains(", \"predict\": ") })
        let results = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: two + "/predict_results.json"))) as? [String: Any] ?? [:]
        for key in ["predict_bleu-4", "predict_rouge-1", "predict_rouge-2", "predict_rouge-l", "predict_runtime", "predict_samples_per_second"] {
            XCTAssertNotNil(results[key] as? Double, key)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: two + "/all_results.json"))
    }

    func testSeededSamplingIsReproducibleAcrossRankCounts() throws {
        let a = TrainingFixtures.outputDirectory("sample-a"), b = TrainingFixtures.outputDirectory("sample-b")
        let c = TrainingFixtures.outputDirectory("sample-c")
        XCTAssertEqual(try KnowTuneRunner.run(try predictArguments(output: a, extra: ["--seed", "3"])).status, 0)
        XCTAssertEqual(try KnowTuneRunner.run(try predictArguments(output: b, extra: ["--seed", "3"]), ranks: 2).status, 0)
        XCTAssertEqual(try KnowTuneRunner.run(try predictArguments(output: c, extra: ["--seed", "4"])).status, 0)
        XCTAssertEqual(try predictions(a), try predictions(b), "per-example seeds make sampling independent of the rank count")
        XCTAssertNotEqual(try predictions(a), try predictions(c), "another seed samples other text")
    }

    func testSixteenBitBasePredictsTheSameOnOneAndTwoRanks() throws {
        for dtype in ["bf16", "f16"] {
            let one = TrainingFixtures.outputDirectory("predict-\(dtype)-one"), two = TrainingFixtures.outputDirectory("predict-\(dtype)-two")
            let extra = ["--do_sample", "false", "--base_dtype", dtype]
            let single = try KnowTuneRunner.run(try predictArguments(output: one, extra: extra))
            XCTAssertEqual(single.status, 0, single.standardError)
            let cached = try FileManager.default.contentsOfDirectory(atPath: TrainingFixtures.root + "/cache/weights")
            XCTAssertTrue(cached.contains { $0.hasSuffix("." + dtype) }, "\(cached)")
            let double = try KnowTuneRunner.run(try predictArguments(output: two, extra: extra), ranks: 2)
            XCTAssertEqual(double.status, 0, double.standardError)
            XCTAssertEqual(try predictions(one), try predictions(two), dtype)
            XCTAssertEqual(try predictions(one).split(separator: "\n").count, 10, dtype)
        }
        let bad = try KnowTuneRunner.run(try predictArguments(output: TrainingFixtures.outputDirectory("predict-fp8"),
                                                             extra: ["--base_dtype", "fp8"]), ranks: 2)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.standardError.contains("--base_dtype fp8 is not supported (fp32, bf16, f16, q8_0, q4_0, q4_k)"), bad.standardError)
    }
}
