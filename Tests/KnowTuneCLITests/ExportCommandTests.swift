// `knowtune export` through the CLI: the merged model, as an HF folder and as an F32 GGUF, scores the same as the
// base with the adapter merged at load; several adapters are merged in order; a q8_0 base (GGUF, or the exported HF
// folder streamed tensor by tensor) scores within 1 %, and export refuses a quantized base.
import Foundation
import KnowTuneTestSupport
import XCTest

final class ExportCommandTests: XCTestCase {
    private func nll(_ model: [String]) throws -> Double {
        let result = try KnowTuneRunner.run(["score"] + model + ["--instruction", "Name three colours.", "--response", "Red, green and blue."])
        XCTAssertEqual(result.status, 0, result.standardError)
        let object = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]
        return try XCTUnwrap(object?["nll_mean"] as? Double)
    }

    func testMergedExportsScoreLikeBasePlusAdapter() throws {
        let adapter = TrainingFixtures.outputDirectory("export-adapter")
        let trained = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: adapter, extra: ["--max_steps", "3", "--learning_rate", "0.05"]))
        XCTAssertEqual(trained.status, 0, trained.standardError)
        let model = try TrainingFixtures.tinyModel()
        let exported = TrainingFixtures.outputDirectory("export-merged")
        let result = try KnowTuneRunner.run(["export", "--model_name_or_path", model, "--adapter_name_or_path", adapter, "--export_dir", exported])
        XCTAssertEqual(result.status, 0, result.standardError)
        for file in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "model-f32.gguf"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: exported + "/" + file), file)
        }
        let reference = try nll(["--model_name_or_path", model, "--adapter_name_or_path", adapter])
        let base = try nll(["--model_name_or_path", model])
        XCTAssertGreaterThan(abs(reference - base), 1e-4, "the adapter changes the model")
        XCTAssertEqual(try nll(["--model_name_or_path", exported]), reference, accuracy: 1e-4)
        XCTAssertEqual(try nll(["--model_name_or_path", exported + "/model-f32.gguf"]), reference, accuracy: 1e-4)

        let quantized = try nll(["--model_name_or_path", model, "--adapter_name_or_path", adapter, "--base_dtype", "q8_0"])
        XCTAssertNotEqual(quantized, reference, "the adapter is merged into q8_0 blocks")
        XCTAssertEqual(quantized, reference, accuracy: 0.01 * reference)
        XCTAssertEqual(try nll(["--model_name_or_path", exported, "--base_dtype", "q8_0"]), reference, accuracy: 0.01 * reference)
        let refused = try KnowTuneRunner.run(["export", "--model_name_or_path", model, "--base_dtype", "q8_0",
                                              "--export_dir", TrainingFixtures.outputDirectory("export-refused")])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.standardError.contains("export merges in fp32: --base_dtype q8_0"), refused.standardError)

        // Several adapters are merged in order for inference (LLaMA-Factory 0.5.3): score and export agree on A,A.
        let twice = try nll(["--model_name_or_path", model, "--adapter_name_or_path", adapter + "," + adapter])
        XCTAssertGreaterThan(abs(twice - reference), 1e-4, "the second copy of the adapter is applied too")
        let exportedTwice = TrainingFixtures.outputDirectory("export-merged-twice")
        let both = try KnowTuneRunner.run(["export", "--model_name_or_path", model, "--adapter_name_or_path", adapter + "," + adapter,
                                           "--export_dir", exportedTwice, "--gguf_type", "none"])
        XCTAssertEqual(both.status, 0, both.standardError)
        XCTAssertEqual(try nll(["--model_name_or_path", exportedTwice]), twice, accuracy: 1e-4)
    }
}
