// End-to-end DPO runs through the real CLI on the tiny model: 2 ranks reach the adapter of 1 rank, DPO continuing
// an SFT adapter keeps that adapter's configuration and lowers the DPO loss on a learnable synthetic preference
// set, a killed run resumes to the same end, and the log files carry TRL's metric names.
import Foundation
import KnowTuneTestSupport
import XCTest

enum DPOFixtures {
    private static let lock = NSLock()
    private static var cachedData: String?

    /// A learnable preference: for every instruction the chosen answer praises ("good", "bright", "clean") and the
    /// rejected one, otherwise the same words, disparages ("bad", "dark", "dirty").
    static func preferenceRecords(count: Int, offset: Int = 0) -> [[String: Any]] {
        let things = ["lamp", "river", "garden", "window", "bridge", "kitchen", "forest", "street"]
        return (0..<count).map { k in
            let i = k + offset
            let thing = things[i % things.count]
            return [
                "instruction": "Describe the \(thing) number \(i).", "input": "",
                "output": ["The \(thing) is good, bright and clean, number \(i).", "The \(thing) is bad, dark and dirty, number \(i)."],
            ]
        }
    }

    /// Dataset folder: `pairs` (24 ranked records, response lists), `pairs_columns` (8 more with separate
    /// chosen/rejected columns), `plain` (not ranked), and the broken ones the bad-input tests use.
    static func dataDirectory() throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let cachedData { return cachedData }
        let folder = TrainingFixtures.root + "/dpo-data"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        func write(_ object: Any, _ name: String) throws {
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: folder + "/" + name))
        }
        try write(preferenceRecords(count: 24), "pairs.json")
        try write(preferenceRecords(count: 8, offset: 24).map { record -> [String: Any] in
            let answers = record["output"] as? [String] ?? []
            return ["question": record["instruction"] ?? "", "good": answers[0], "bad": answers[1]]
        }, "pairs_columns.json")
        try write(preferenceRecords(count: 8).map { ["instruction": $0["instruction"] ?? "", "output": "one answer"] }, "plain.json")
        var three = preferenceRecords(count: 4)
        three[2]["output"] = ["a", "b", "c"]
        try write(three, "three.json")
        var single = preferenceRecords(count: 4)
        single[1]["output"] = "only one answer"
        try write(single, "single.json")
        var identical = preferenceRecords(count: 8)
        identical[3]["output"] = ["The same answer.", "The same answer."]
        try write(identical, "identical.json")
        // KC-shaped: three pairs per instruction share the chosen answer.
        try write((0..<24).map { i -> [String: Any] in
            let thing = ["lamp", "river", "garden", "window", "bridge", "kitchen", "forest", "street"][i / 3]
            let rejected = ["bad", "dark", "dirty"][i % 3]
            return ["instruction": "Describe the \(thing).", "input": "",
                    "output": ["The \(thing) is good, bright and clean.", "The \(thing) is \(rejected), only \(rejected)."]]
        }, "shared.json")
        let columns = ["prompt": "instruction", "query": "input", "response": "output"]
        let registry: [String: Any] = [
            "pairs_shared": ["file_name": "shared.json", "columns": columns, "ranking": true],
            "pairs": ["file_name": "pairs.json", "columns": columns, "ranking": true],
            "pairs_columns": ["file_name": "pairs_columns.json", "columns": ["prompt": "question", "chosen": "good", "rejected": "bad"]],
            "plain": ["file_name": "plain.json", "columns": columns],
            "three_responses": ["file_name": "three.json", "columns": columns, "ranking": true],
            "single_response": ["file_name": "single.json", "columns": columns, "ranking": true],
            "identical": ["file_name": "identical.json", "columns": columns, "ranking": true],
        ]
        try write(registry, "dataset_info.json")
        cachedData = folder
        return folder
    }

    /// The flags of a small DPO run (global batch 8 = 32 pairs / 4 steps per epoch, 2 epochs).
    static func arguments(output: String, extra: [String] = []) throws -> [String] {
        [
            "train", "--stage", "dpo", "--model_name_or_path", try TrainingFixtures.tinyModel(), "--do_train",
            "--dataset", "pairs,pairs_columns", "--dataset_dir", try dataDirectory(), "--template", "alpaca",
            "--finetuning_type", "lora", "--lora_target", "q_proj,v_proj", "--per_device_train_batch_size", "4",
            "--lr_scheduler_type", "cosine", "--learning_rate", "5e-3", "--num_train_epochs", "2.0", "--cutoff_len", "96",
            "--logging_steps", "1", "--save_steps", "2", "--dpo_ftx", "0.2", "--seed", "7", "--output_dir", output,
        ] + extra
    }
}

/// The entries of trainer_state.json's log_history.
func logHistory(_ output: String) throws -> [[String: Any]] {
    let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/trainer_state.json"))) as? [String: Any]
    return state?["log_history"] as? [[String: Any]] ?? []
}

final class DPOTrainingTests: XCTestCase {
    /// Tolerance for 1 vs 2 ranks: the all-reduce adds per-rank partial gradients in another order than one rank
    /// does, so values agree to fp32 rounding (amplified a little by AdamW's division by √v), not bitwise.
    let rankTolerance: Float = 1e-5

    func testTwoRanksReachTheSameAdapterAsOneRank() throws {
        let one = TrainingFixtures.outputDirectory("dpo-one-rank")
        let two = TrainingFixtures.outputDirectory("dpo-two-ranks")
        let single = try KnowTuneRunner.run(try DPOFixtures.arguments(output: one, extra: ["--per_device_train_batch_size", "8"]))
        XCTAssertEqual(single.status, 0, single.standardError)
        let double = try KnowTuneRunner.run(try DPOFixtures.arguments(output: two), ranks: 2)
        XCTAssertEqual(double.status, 0, double.standardError)
        XCTAssertTrue(double.standardError.contains("world_size=2"), double.standardError)
        let difference = maxAbsoluteDifference(try readAdapter(one), try readAdapter(two))
        XCTAssertLessThanOrEqual(difference, rankTolerance)
        print("DPO 1 rank vs 2 ranks: max |Δ adapter| = \(difference)")

        let historyOne = try logHistory(one), historyTwo = try logHistory(two)
        let stepsOne = historyOne.filter { $0["loss"] != nil }, stepsTwo = historyTwo.filter { $0["loss"] != nil }
        XCTAssertEqual(stepsOne.count, 8)
        XCTAssertEqual(stepsTwo.count, 8)
        for (a, b) in zip(stepsOne, stepsTwo) {
            // At step 1 every margin is 0 up to rounding, so each pair's "accuracy" (margin > 0) is the sign of
            // rounding noise, which differs between packings; from step 2 on the margins are real.
            let accuracy = (a["step"] as? Int ?? 0) > 1 ? ["rewards/accuracies"] : []
            for key in ["loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"] + accuracy {
                let x = try XCTUnwrap(a[key] as? Double, key), y = try XCTUnwrap(b[key] as? Double, key)
                XCTAssertEqual(x, y, accuracy: 2e-4 * max(1, abs(x)), "\(key) at step \(a["step"] ?? "?")")
            }
        }
        // Step 1 starts from the PEFT init (B = 0): policy = reference, so the rewards are 0 and the loss is ln 2
        // plus 0.2 × the chosen answers' mean NLL.
        let first = stepsOne[0]
        // (Not bitwise: the reference pass packs the sequences differently, which changes BLAS blocking.)
        XCTAssertEqual(first["rewards/chosen"] as? Double ?? .nan, 0, accuracy: 1e-4)
        XCTAssertEqual(first["rewards/margins"] as? Double ?? .nan, 0, accuracy: 1e-4)
        XCTAssertGreaterThan(first["loss"] as? Double ?? 0, log(2.0))
    }

    func testDPOContinuingAnSFTAdapterKeepsItsConfigAndLowersTheLoss() throws {
        // SFT first, with a non-default adapter (r 4, alpha 8, on q, k and v) that the DPO flags would not give.
        let sft = TrainingFixtures.outputDirectory("dpo-sft-base")
        let sftRun = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: sft, extra: [
            "--lora_rank", "4", "--lora_alpha", "8", "--lora_target", "q_proj,k_proj,v_proj", "--max_steps", "4",
        ]))
        XCTAssertEqual(sftRun.status, 0, sftRun.standardError)

        let dpo = TrainingFixtures.outputDirectory("dpo-continued")
        let run = try KnowTuneRunner.run(try DPOFixtures.arguments(output: dpo, extra: [
            "--checkpoint_dir", sft, "--resume_lora_training", "1", "--num_train_epochs", "6", "--logging_steps", "4",
            "--save_steps", "1000", "--plot_loss",
        ]), ranks: 2)
        XCTAssertEqual(run.status, 0, run.standardError)
        XCTAssertTrue(run.standardError.contains("continuing the adapter"), run.standardError)

        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dpo + "/adapter_config.json"))) as? [String: Any] ?? [:]
        XCTAssertEqual(config["r"] as? Int, 4)
        XCTAssertEqual((config["lora_alpha"] as? NSNumber)?.doubleValue, 8)
        XCTAssertEqual(Set(config["target_modules"] as? [String] ?? []), ["q_proj", "k_proj", "v_proj"])
        // The SFT adapter was trained further, not replaced.
        let before = try readAdapter(sft), after = try readAdapter(dpo)
        XCTAssertEqual(Set(before.keys), Set(after.keys))
        XCTAssertGreaterThan(maxAbsoluteDifference(before, after), 1e-4)

        // 24 steps logged every 4: the loss (DPO + 0.2·SFT) falls, the chosen answers win more often.
        let history = try logHistory(dpo).filter { $0["loss"] != nil }
        XCTAssertEqual(history.count, 6)
        let losses = history.compactMap { $0["loss"] as? Double }
        let margins = history.compactMap { $0["rewards/margins"] as? Double }
        let accuracies = history.compactMap { $0["rewards/accuracies"] as? Double }
        print("DPO after SFT: losses \(losses), margins \(margins), accuracies \(accuracies)")
        XCTAssertLessThan(losses.last ?? .infinity, (losses.first ?? 0) - 0.05)
        XCTAssertGreaterThan(margins.last ?? 0, margins.first ?? 0)
        XCTAssertGreaterThan(margins.last ?? 0, 0)
        XCTAssertEqual(accuracies.last ?? 0, 1, accuracy: 1e-9)

        // Output files: the 11 LLaMA-Factory keys first, then TRL's metric names; the summary and the plot.
        let firstLine = try String(contentsOfFile: dpo + "/trainer_log.jsonl", encoding: .utf8).split(separator: "\n").first ?? ""
        XCTAssertTrue(firstLine.hasPrefix("{\"current_steps\": 4, \"total_steps\": 24, \"loss\": "), String(firstLine))
        for key in ["grad_norm", "logps/chosen", "logps/rejected", "rewards/accuracies", "rewards/chosen", "rewards/margins", "rewards/rejected"] {
            XCTAssertTrue(firstLine.contains("\"\(key)\": "), key)
        }
        let results = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dpo + "/train_results.json"))) as? [String: Any] ?? [:]
        for key in ["train_loss", "train_runtime", "train_pairs_per_second", "reference_runtime", "epoch"] {
            XCTAssertNotNil(results[key], key)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dpo + "/training_loss.svg"))
    }

    func testSeparateReferenceModel() throws {
        // --ref_model naming the base itself computes the same reference as "adapter disabled": same adapter.
        let implicit = TrainingFixtures.outputDirectory("dpo-ref-implicit")
        let explicit = TrainingFixtures.outputDirectory("dpo-ref-explicit")
        let short = ["--max_steps", "2", "--per_device_train_batch_size", "8"]
        XCTAssertEqual(try KnowTuneRunner.run(try DPOFixtures.arguments(output: implicit, extra: short)).status, 0)
        let explicitRun = try KnowTuneRunner.run(try DPOFixtures.arguments(output: explicit, extra: short + ["--ref_model", try TrainingFixtures.tinyModel()]))
        XCTAssertEqual(explicitRun.status, 0, explicitRun.standardError)
        XCTAssertTrue(explicitRun.standardError.contains("(--ref_model "), explicitRun.standardError)
        XCTAssertEqual(maxAbsoluteDifference(try readAdapter(implicit), try readAdapter(explicit)), 0)

        // With an adapter merged into the reference, the fresh policy (= base) no longer equals it: step 1 has
        // non-zero rewards, while the implicit reference gives zero.
        let sft = TrainingFixtures.outputDirectory("dpo-ref-adapter")
        XCTAssertEqual(try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: sft, extra: ["--max_steps", "2"])).status, 0)
        let shifted = TrainingFixtures.outputDirectory("dpo-ref-shifted")
        let shiftedRun = try KnowTuneRunner.run(try DPOFixtures.arguments(output: shifted, extra: short + [
            "--ref_model", try TrainingFixtures.tinyModel(), "--ref_model_adapters", sft,
        ]))
        XCTAssertEqual(shiftedRun.status, 0, shiftedRun.standardError)
        let first = try XCTUnwrap(try logHistory(shifted).first)
        let reward = try XCTUnwrap(first["rewards/chosen"] as? Double)
        XCTAssertGreaterThan(abs(reward), 1e-3)
        let implicitFirst = try XCTUnwrap(try logHistory(implicit).first)
        XCTAssertEqual(implicitFirst["rewards/chosen"] as? Double ?? .nan, 0, accuracy: 1e-4)
    }

    func testRunKilledDuringTrainingResumesToTheSameEnd() throws {
        let reference = TrainingFixtures.outputDirectory("dpo-uninterrupted")
        let resumed = TrainingFixtures.outputDirectory("dpo-killed")
        // logging every 3 steps so that the checkpoint at step 4 holds metrics logged at step 3 and one step since.
        let extra = ["--logging_steps", "3"]
        XCTAssertEqual(try KnowTuneRunner.run(try DPOFixtures.arguments(output: reference, extra: extra), ranks: 2).status, 0)
        let killed = try KnowTuneRunner.run(try DPOFixtures.arguments(output: resumed, extra: extra), ranks: 2,
                                            environment: ["KNOWTUNE_FAULT_KILL_AT_STEP": "6"])
        XCTAssertNotEqual(killed.status, 0, "the run must have been killed")
        let restart = try KnowTuneRunner.run(try DPOFixtures.arguments(output: resumed, extra: extra + ["--resume_from_checkpoint", "latest"]), ranks: 2)
        XCTAssertEqual(restart.status, 0, restart.standardError)
        XCTAssertTrue(restart.standardError.contains("checkpoint-4 at step 4"), restart.standardError)
        XCTAssertEqual(maxAbsoluteDifference(try readAdapter(reference), try readAdapter(resumed)), 0, "identical, not just close")
        let a = try logHistory(reference), b = try logHistory(resumed)
        XCTAssertEqual(a.count, b.count)
        for (x, y) in zip(a, b) {
            for key in ["loss", "rewards/margins", "rewards/accuracies", "logps/chosen"] {
                XCTAssertEqual(x[key] as? Double, y[key] as? Double, "\(key) at step \(x["step"] ?? "?")")
            }
        }
    }
}
