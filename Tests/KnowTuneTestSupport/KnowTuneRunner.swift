// Implements fixtures for end-to-end training tests: a tiny random LLaMA in a GGUF with SmolLM2's real tokenizer,
// a small dataset folder, and a runner for `knowtune` (1 rank or `mpirun -np N`) that fails on a hang.
import Foundation
import KnowTuneTensor
import XCTest

public enum TrainingFixtures {
    public static let root = TestPaths.scratchFolder("training-tests")

    private static let lock = NSLock()
    private static var cachedData: String?

    public static func tinyModel() throws -> String { try TinyGGUFModel.path(in: root + "/tiny-model") }

    /// A dataset folder: `tiny_train` (48 dolly records, outputs cut short) plus the broken entries bad-input tests use.
    public static func dataDirectory() throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let cachedData { return cachedData }
        let folder = root + "/data"
        try TinyDataset.write(in: folder)
        try Data("[{\"instruction\": \"a\", \"output\": \"b\"},".utf8).write(to: URL(fileURLWithPath: folder + "/malformed.json"))
        try JSONSerialization.data(withJSONObject: [["question": "x", "answer": "y"]]).write(to: URL(fileURLWithPath: folder + "/wrong_columns.json"))
        let columns = ["prompt": "instruction", "query": "input", "response": "output"]
        let registry: [String: Any] = [
            "tiny_train": TinyDataset.registryEntry,
            "missing_file": ["file_name": "does_not_exist.json", "columns": columns],
            "malformed": ["file_name": "malformed.json", "columns": columns],
            "wrong_columns": ["file_name": "wrong_columns.json", "columns": columns],
        ]
        try JSONSerialization.data(withJSONObject: registry).write(to: URL(fileURLWithPath: folder + "/dataset_info.json"))
        cachedData = folder
        return folder
    }

    /// Fresh, empty output folder.
    public static func outputDirectory(_ name: String) -> String { TestPaths.freshOutputFolder(name, in: root) }

    /// The common flags of a small SFT run.
    public static func trainArguments(output: String, extra: [String] = []) throws -> [String] {
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

public enum KnowTuneRunner {
    /// Runs `knowtune arguments` on `ranks` ranks (mpirun when > 1, one BLAS thread each); a run longer than
    /// `timeout` is killed and fails the calling test as a hang.
    public static func run(_ arguments: [String], ranks: Int = 1, environment extra: [String: String] = [:], timeout: Double = 120,
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

    /// Runs `arguments` expecting the bad-input contract: a non-zero exit within 30 s, `message` exactly once on stderr
    /// (rank 0 reports, the others do not repeat it), no crash. Returns stderr.
    @discardableResult
    public static func expectFailure(_ arguments: [String], message: String, ranks: Int = 2,
                                     file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try run(arguments, ranks: ranks, timeout: 60, file: file, line: line)
        XCTAssertNotEqual(result.status, 0, "must fail: \(result.standardError)", file: file, line: line)
        XCTAssertLessThan(result.seconds, 30, "must not hang", file: file, line: line)
        let occurrences = result.standardError.components(separatedBy: message).count - 1
        XCTAssertEqual(occurrences, 1, "expected '\(message)' exactly once in:\n\(result.standardError)", file: file, line: line)
        XCTAssertFalse(result.standardError.contains("Fatal error"), "no crash", file: file, line: line)
        return result.standardError
    }
}

/// The `loss` values of trainer_log.jsonl, in order.
public func loggedLosses(_ output: String) throws -> [Double] {
    let text = try String(contentsOfFile: output + "/trainer_log.jsonl", encoding: .utf8)
    return text.split(separator: "\n").compactMap { line in
        (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["loss"] as? Double
    }
}
