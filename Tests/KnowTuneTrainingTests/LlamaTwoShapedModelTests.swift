// Tests the Llama-2 path end to end: a random model with Llama-2's architecture scaled down (untied lm_head, as
// many KV heads as heads, RMSNorm ε 1e-5, BOS 1 / EOS 2, the SentencePiece vocabulary of the tokenizer fixtures)
// written as an HF safetensors folder, trained under `mpirun -np 2` to the 1-rank adapter, and exported as a merged
// HF folder that scores like base + adapter.
import Foundation
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneModel

final class LlamaTwoShapedModelTests: XCTestCase {
    /// Llama-2-7B divided down: hidden 4096 → 64, intermediate 11008 → 172, 32 → 2 layers, 32 → 4 heads (no GQA).
    static let configuration = LlamaConfiguration(
        vocabularySize: 1200, hiddenSize: 64, intermediateSize: 172, layerCount: 2, headCount: 4, kvHeadCount: 4,
        rmsNormEpsilon: 1e-5, ropeTheta: 10000, tieWordEmbeddings: false, maxPositionEmbeddings: 512, bosTokenId: 1, eosTokenId: 2)

    static let tokenizerFixture = TestPaths.repositoryRoot.appendingPathComponent("Tests/KnowTuneModelTests/Fixtures/sentencepiece/legacy").path

    /// The HF folder: config.json, model.safetensors and the SentencePiece tokenizer files.
    func writeModel() throws -> String {
        let folder = TrainingFixtures.outputDirectory("llama2-shaped-model")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let weights = RandomModel.weights(Self.configuration, seed: 7)
        let config = try JSONSerialization.data(withJSONObject: ModelExporter.configJSON(Self.configuration), options: [.sortedKeys])
        try config.write(to: URL(fileURLWithPath: folder + "/config.json"))
        try SafeTensorsWriter.write(weights.namedTensors().map { tensor in
            (name: tensor.name, shape: tensor.shape,
             values: UnsafeBufferPointer(start: UnsafePointer(tensor.pointer), count: tensor.shape.reduce(1, *)))
        }, to: folder + "/model.safetensors")
        for name in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: Self.tokenizerFixture + "/" + name, toPath: folder + "/" + name)
        }
        return folder
    }

    private func nll(_ model: [String]) throws -> Double {
        let result = try KnowTuneRunner.run(["score"] + model + ["--instruction", "Name three colours.", "--response", "Red, green and blue."])
        XCTAssertEqual(result.status, 0, result.standardError)
        let object = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]
        return try XCTUnwrap(object?["nll_mean"] as? Double)
    }

    func testTrainsUnderTwoRanksAndExports() throws {
        let model = try writeModel()
        func arguments(_ output: String, batch: Int) throws -> [String] {
            ["train", "--stage", "sft", "--model_name_or_path", model, "--do_train", "--dataset", "tiny_train",
             "--dataset_dir", try TrainingFixtures.dataDirectory(), "--template", "alpaca", "--finetuning_type", "lora",
             "--lora_target", "q_proj,v_proj", "--per_device_train_batch_size", String(batch), "--max_steps", "4",
             "--cutoff_len", "128", "--learning_rate", "2e-2", "--logging_steps", "1", "--save_strategy", "no",
             "--seed", "3", "--output_dir", output]
        }
        let two = TrainingFixtures.outputDirectory("llama2-shaped-two-ranks")
        let double = try KnowTuneRunner.run(try arguments(two, batch: 2), ranks: 2)
        XCTAssertEqual(double.status, 0, double.standardError)
        XCTAssertTrue(double.standardError.contains("world_size=2"), double.standardError)
        XCTAssertTrue(double.standardError.contains("[HF safetensors"), double.standardError)
        let one = TrainingFixtures.outputDirectory("llama2-shaped-one-rank")
        let single = try KnowTuneRunner.run(try arguments(one, batch: 4))
        XCTAssertEqual(single.status, 0, single.standardError)
        XCTAssertLessThanOrEqual(maxAbsoluteDifference(try readAdapter(one), try readAdapter(two)), 1e-5)
        let losses = try loggedLosses(two)
        XCTAssertEqual(losses.count, 4)
        XCTAssertLessThan(losses.last ?? .infinity, losses.first ?? 0, "the loss falls: \(losses)")

        let exported = TrainingFixtures.outputDirectory("llama2-shaped-export")
        let export = try KnowTuneRunner.run(["export", "--model_name_or_path", model, "--adapter_name_or_path", two, "--export_dir", exported,
                                             "--gguf_type", "none"])
        XCTAssertEqual(export.status, 0, export.standardError)
        for file in ["config.json", "model.safetensors", "tokenizer.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: exported + "/" + file), file)
        }
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: exported + "/config.json"))) as? [String: Any]
        XCTAssertEqual(config?["tie_word_embeddings"] as? Bool, false)
        XCTAssertEqual(config?["num_key_value_heads"] as? Int, 4)
        let reference = try nll(["--model_name_or_path", model, "--adapter_name_or_path", two])
        XCTAssertGreaterThan(abs(reference - (try nll(["--model_name_or_path", model]))), 1e-4, "the adapter changes the model")
        XCTAssertEqual(try nll(["--model_name_or_path", exported]), reference, accuracy: 1e-4)
    }
}
