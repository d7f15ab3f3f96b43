// End-to-end SFT runs through the real CLI on a tiny model: 2 ranks equal 1 rank, a killed run resumes to the same
// end, the best checkpoint is the one restored, and the PEFT files are written.
import Foundation
import KnowTuneTestSupport
import XCTest

final class DistributedTrainingTests: XCTestCase {
    /// Tolerance for 1 vs 2 ranks: the all-reduce sums per-rank partial gradients in another order than one rank
    /// does, so values agree to fp32 rounding, not bitwise.
    let rankTolerance: Float = 1e-5

    func testTwoRanksReachTheSameAdapterAsOneRank() throws {
        let one = TrainingFixtures.outputDirectory("one-rank")
        let two = TrainingFixtures.outputDirectory("two-ranks")
        let single = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: one, extra: ["--per_device_train_batch_size", "8"]))
        XCTAssertEqual(single.status, 0, single.standardError)
        let double = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: two), ranks: 2)
        XCTAssertEqual(double.status, 0, double.standardError)
        XCTAssertTrue(double.standardError.contains("world_size=2"), double.standardError)
        let difference = maxAbsoluteDifference(try readAdapter(one), try readAdapter(two))
        XCTAssertLessThanOrEqual(difference, rankTolerance)
        let lossesOne = try loggedLosses(one), lossesTwo = try loggedLosses(two)
        XCTAssertEqual(lossesOne.count, 5)
        for (a, b) in zip(lossesOne, lossesTwo) { XCTAssertEqual(a, b, accuracy: 2e-4) }
        // The adapter moved away from its initialisation (B starts at zero).
        let adapter = try readAdapter(two)
        let bNorm = adapter.filter { $0.key.contains("lora_B") }.values.flatMap { $0 }.map { $0 * $0 }.reduce(0, +)
        XCTAssertGreaterThan(bNorm, 1e-8)
    }

    func testRunKilledDuringTrainingResumesToTheSameEnd() throws {
        let reference = TrainingFixtures.outputDirectory("uninterrupted")
        let resumed = TrainingFixtures.outputDirectory("killed-in-training")
        XCTAssertEqual(try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: reference)).status, 0)
        let killed = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: resumed),
                                            environment: ["KNOWTUNE_FAULT_KILL_AT_STEP": "4"])
        XCTAssertNotEqual(killed.status, 0, "the run must have been killed")
        XCTAssertFalse(FileManager.default.fileExists(atPath: resumed + "/adapter_model.safetensors"))
        let restart = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: resumed, extra: ["--resume_from_checkpoint", "latest"]))
        XCTAssertEqual(restart.status, 0, restart.standardError)
        XCTAssertTrue(restart.standardError.contains("checkpoint-2"), "resumes from the last complete checkpoint")
        XCTAssertEqual(maxAbsoluteDifference(try readAdapter(reference), try readAdapter(resumed)), 0, "identical, not just close")
        XCTAssertEqual(try loggedLosses(reference), try loggedLosses(resumed))
    }

    func testRunKilledDuringACheckpointWriteKeepsThePreviousCheckpointAndResumes() throws {
        let reference = TrainingFixtures.outputDirectory("uninterrupted-2")
        let resumed = TrainingFixtures.outputDirectory("killed-in-write")
        XCTAssertEqual(try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: reference), ranks: 2).status, 0)
        let killed = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: resumed), ranks: 2,
                                            environment: ["KNOWTUNE_FAULT_CHECKPOINT_WRITE": "kill", "KNOWTUNE_FAULT_CHECKPOINT_AT_STEP": "4"],
                                            timeout: 60)
        XCTAssertNotEqual(killed.status, 0)
        XCTAssertLessThan(killed.seconds, 45, "the surviving rank must not hang")
        XCTAssertTrue(FileManager.default.fileExists(atPath: resumed + "/checkpoint-2/state.h5"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: resumed + "/checkpoint-4/state.h5"), "a half-written file is never published")
        let restart = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: resumed, extra: ["--resume_from_checkpoint", "latest"]), ranks: 2)
        XCTAssertEqual(restart.status, 0, restart.standardError)
        XCTAssertEqual(maxAbsoluteDifference(try readAdapter(reference), try readAdapter(resumed)), 0)
    }

    /// A checkpoint folder is published as one unit: killed after each of its files, the run leaves only
    /// `checkpoint-4.tmp` (with the files written so far), and resume takes checkpoint-2 and ends as the reference.
    func testKillBetweenCheckpointFilesLeavesOnlyCompleteCheckpoints() throws {
        let reference = TrainingFixtures.outputDirectory("unit-reference")
        XCTAssertEqual(try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: reference)).status, 0)
        let written = [["adapter_model.safetensors", "adapter_config.json"], ["state.h5", "state.h5.fnv1a64"], ["trainer_state.json"]]
        for (index, part) in ["after-adapter", "after-state", "after-trainer-state"].enumerated() {
            let output = TrainingFixtures.outputDirectory("unit-\(part)")
            let killed = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: output),
                                                environment: ["KNOWTUNE_FAULT_CHECKPOINT_WRITE": part, "KNOWTUNE_FAULT_CHECKPOINT_AT_STEP": "4"])
            XCTAssertNotEqual(killed.status, 0, part)
            XCTAssertFalse(FileManager.default.fileExists(atPath: output + "/checkpoint-4"), "\(part): nothing published")
            let partial = Set((try? FileManager.default.contentsOfDirectory(atPath: output + "/checkpoint-4.tmp")) ?? [])
            XCTAssertEqual(partial, Set(written.prefix(index + 1).flatMap { $0 }), part)
            for file in written.flatMap({ $0 }) {
                XCTAssertTrue(FileManager.default.fileExists(atPath: output + "/checkpoint-2/" + file), "\(part): checkpoint-2/\(file)")
            }
            let restart = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: output, extra: ["--resume_from_checkpoint", "latest"]))
            XCTAssertEqual(restart.status, 0, restart.standardError)
            XCTAssertTrue(restart.standardError.contains("resumed from \(output)/checkpoint-2 at step 2"), restart.standardError)
            XCTAssertFalse(FileManager.default.fileExists(atPath: output + "/checkpoint-4.tmp"), "\(part): the stale folder is replaced")
            XCTAssertEqual(maxAbsoluteDifference(try readAdapter(reference), try readAdapter(output)), 0, part)
        }
    }

    func testBestCheckpointIsRestoredAndPEFTFilesAreWritten() throws {
        let output = TrainingFixtures.outputDirectory("best")
        // A high learning rate makes the validation loss rise after the first steps, so the best is not the last.
        let result = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: output, extra: ["--learning_rate", "0.3", "--max_grad_norm", "0"]))
        XCTAssertEqual(result.status, 0, result.standardError)
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/trainer_state.json"))) as? [String: Any] ?? [:]
        let best = try XCTUnwrap(state["best_model_checkpoint"] as? String)
        let history = state["log_history"] as? [[String: Any]] ?? []
        let evals = history.compactMap { entry -> (Int, Double)? in
            guard let loss = entry["eval_loss"] as? Double, let step = entry["step"] as? Int else { return nil }
            return (step, loss)
        }
        let bestEval = try XCTUnwrap(evals.min { $0.1 < $1.1 })
        XCTAssertTrue(best.hasSuffix("checkpoint-\(bestEval.0)"), "\(best) vs evals \(evals)")
        XCTAssertEqual(maxAbsoluteDifference(try readAdapter(output), try readAdapter(best)), 0)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/adapter_config.json"))) as? [String: Any] ?? [:]
        XCTAssertEqual(config["peft_type"] as? String, "LORA")
        XCTAssertEqual(config["r"] as? Int, 8)
        XCTAssertEqual(Set(config["target_modules"] as? [String] ?? []), ["q_proj", "v_proj"])
        let adapter = try readAdapter(output)
        XCTAssertEqual(adapter.count, 2 * 2 * 2)
        XCTAssertEqual(adapter["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"]?.count, 16 * 8)
        for file in ["trainer_log.jsonl", "trainer_state.json", "train_results.json", "eval_results.json", "all_results.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: output + "/" + file), file)
        }
        let firstLine = try String(contentsOfFile: output + "/trainer_log.jsonl", encoding: .utf8).split(separator: "\n").first ?? ""
        XCTAssertTrue(firstLine.hasPrefix("{\"current_steps\": 1, \"total_steps\": 10, \"loss\": "), String(firstLine))
    }
}
