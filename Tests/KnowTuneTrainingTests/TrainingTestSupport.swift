// Implements fixtures for end-to-end training tests: a tiny random LLaMA in a GGUF with SmolLM2's real tokenizer,
// a small dataset folder, and a runner for `knowtune` (1 rank or `mpirun -np N`) that fails on a hang.
import Foundation
import KnowTuneTensor
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneModel

enum TrainingFixtures {
    static let root: String = {
        let path = NSTemporaryDirectory() + "knowtune-training-tests-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    private static let lock = NSLock()
    private static var cachedModel: String?
    private static var cachedData: String?

    /// A 2-layer, hidden-32 LLaMA (GQA 4/2 heads, tied head) with SmolLM2's 49152-token tokenizer.
    static func tinyModel() throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let cachedModel { return cachedModel }
        let source = try GGUFFile(path: try TestPaths.require(TestPaths.smolLM2))
        let configuration = LlamaConfiguration(vocabularySize: 49152, hiddenSize: 32, intermediateSize: 48, layerCount: 2,
                                               headCount: 4, kvHeadCount: 2, rmsNormEpsilon: 1e-5, ropeTheta: 10000,
                                               tieWordEmbeddings: true, maxPositionEmbeddings: 512)
        let weights = LlamaWeights(configuration: configuration)
        var generator = SplitMix64(seed: 2024)
        for tensor in weights.namedTensors() {
            let count = tensor.shape.reduce(1, *)
            let isNorm = tensor.shape.count == 1
            for i in 0..<count {
                let u = 2 * generator.nextUnitFloat() - 1
                tensor.pointer[i] = isNorm ? 1 + 0.1 * u : u * 0.25
            }
        }
        let folder = root + "/tiny-model"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/tiny.gguf"
        try GGUFModelWriter.write(weights, tokenizerMetadata: GGUFModelWriter.tokenizerMetadata(of: source), name: "tiny", to: path)
        cachedModel = path
        return path
    }

    /// A dataset folder: `tiny_train` (48 dolly records, outputs cut short) plus the broken entries bad-input tests use.
    static func dataDirectory() throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let cachedData { return cachedData }
        let folder = root + "/data"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let dolly = TestPaths.repositoryRoot.appendingPathComponent("data/dolly/dolly_train.json")
        let records = try JSONSerialization.jsonObject(with: Data(contentsOf: dolly)) as? [[String: Any]] ?? []
        let small = records.prefix(48).map { record -> [String: Any] in
            var copy = record
            copy["output"] = String((record["output"] as? String ?? "").prefix(160))
            return copy
        }
        try JSONSerialization.data(withJSONObject: Array(small)).write(to: URL(fileURLWithPath: folder + "/tiny_train.json"))
        try Data("[{\"instruction\": \"a\", \"output\": \"b\"},".utf8).write(to: URL(fileURLWithPath: folder + "/malformed.json"))
        try JSONSerialization.data(withJSONObject: [["question": "x", "answer": "y"]]).write(to: URL(fileURLWithPath: folder + "/wrong_columns.json"))
        let columns = ["prompt": "instruction", "query": "input", "response": "output"]
        let registry: [String: Any] = [
            "tiny_train": ["file_name": "tiny_train.json", "columns": columns],
            "missing_file": ["file_name": "does_not_exist.json", "columns": columns],
            "malformed": ["file_name": "malformed.json", "columns": columns],
            "wrong_columns": ["file_name": "wrong_columns.json", "columns": columns],
        ]
        try JSONSerialization.data(withJSONObject: registry).write(to: URL(fileURLWithPath: folder + "/dataset_info.json"))
        cachedData = folder
        return folder
    }

    /// Fresh, empty output folder.
    static func outputDirectory(_ name: String) -> String {
        let path = root + "/out-\(name)"
        try? FileManager.default.removeItem(atPath: path)
        return path
    }

    /// The common flags of a small SFT run.
    static func trainArguments(output: String, extra: [String] = []) throws -> [String] {
        [
            "train", "--stage", "sft", "--model_name_or_path", try tinyModel(), "--do_train", "--dataset", "tiny_train",
            "--dataset_dir", try dataDirectory(), "--template", "alpaca", "--finetuning_type", "lora",
            "--lora_target", "q_proj,v_proj", "--per_device_train_batch_size", "4", "--lr_scheduler_type", "cosine",
            "--learning_rate", "5e-3", "--num_train_epochs", "1.0", "--val_size", "8", "--cutoff_len", "96",
            "--evaluation_strategy", "steps", "--eval_steps", "2", "--save_steps", "2", "--logging_steps", "1",
            "--load_best_model_at_end", "--seed", "7", "--output_dir", output,
        ] + extra
    }
}

enum KnowTuneRunner {
    /// Runs `knowtune arguments` on `ranks` ranks (mpirun when > 1, one BLAS thread each); a run longer than
    /// `timeout` is killed and fails the calling test as a hang.
    static func run(_ arguments: [String], ranks: Int = 1, environment extra: [String: String] = [:], timeout: Double = 120,
                    file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let executable = try Testkit.executable(named: "knowtune")
        // The node-shared weights cache lives with the test's other files, not in the user's cache.
        let environment = ["OPENBLAS_NUM_THREADS": "1", "KNOWTUNE_CACHE": TrainingFixtures.root + "/cache"].merging(extra) { _, new in new }
        let result = ranks > 1
            ? try Testkit.runUnderMPI(executable: executable, ranks: ranks, arguments, environment: environment, timeout: timeout)
            : try Testkit.run(executable, arguments, environment: environment, timeout: timeout)
        if result.timedOut {
            XCTFail("knowtune \(arguments.prefix(3).joined(separator: " ")) … hung for \(timeout) s", file: file, line: line)
        }
        return result
    }
}

/// Reads an adapter's tensors (name → values).
func readAdapter(_ folder: String) throws -> [String: [Float]] {
    let file = try SafeTensorsFile(path: folder + "/adapter_model.safetensors")
    var result: [String: [Float]] = [:]
    for name in file.tensors.keys { result[name] = try file.readArray(name) }
    return result
}

func maxAbsoluteDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Float {
    var worst: Float = 0
    for (name, values) in a {
        guard let other = b[name], other.count == values.count else { return .infinity }
        for i in values.indices { worst = max(worst, abs(values[i] - other[i])) }
    }
    return a.count == b.count ? worst : .infinity
}

/// The `loss` values of trainer_log.jsonl, in order.
func loggedLosses(_ output: String) throws -> [Double] {
    let text = try String(contentsOfFile: output + "/trainer_log.jsonl", encoding: .utf8)
    return text.split(separator: "\n").compactMap { line in
        (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["loss"] as? Double
    }
}
