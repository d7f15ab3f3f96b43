// Checks activation recomputation end to end under `mpirun -np 2`: SFT (with LoRA dropout, every projection adapted)
// and DPO with `--gradient_checkpointing` reach the adapter and losses of the run that keeps every activation; the
// banner says which was chosen and why; contradicting flags and a token budget no memory holds are refused before
// training.
import Foundation
import KnowTuneTestSupport
import XCTest

final class ActivationRecomputationTrainingTests: XCTestCase {
    private func compare(_ name: String, arguments: (String, [String]) throws -> [String]) throws {
        let saved = TrainingFixtures.outputDirectory("\(name)-saved")
        let recomputed = TrainingFixtures.outputDirectory("\(name)-recomputed")
        let off = try KnowTuneRunner.run(try arguments(saved, ["--disable_gradient_checkpointing"]), ranks: 2)
        XCTAssertEqual(off.status, 0, off.standardError)
        XCTAssertTrue(off.standardError.contains("activation recomputation off: --disable_gradient_checkpointing"), off.standardError)
        let on = try KnowTuneRunner.run(try arguments(recomputed, ["--gradient_checkpointing", "true"]), ranks: 2)
        XCTAssertEqual(on.status, 0, on.standardError)
        XCTAssertTrue(on.standardError.contains("activation recomputation on: --gradient_checkpointing"), on.standardError)
        XCTAssertLessThanOrEqual(relativeDifference(try readAdapter(saved), try readAdapter(recomputed)), 1e-5, name)
        XCTAssertEqual(try loggedLosses(saved), try loggedLosses(recomputed), name)
        XCTAssertFalse(try loggedLosses(saved).isEmpty)
    }

    func testSFTWithRecomputationEqualsSavedActivationsOnTwoRanks() throws {
        try compare("recompute-sft") { output, extra in
            try TrainingFixtures.trainArguments(output: output, extra: ["--lora_target", "all", "--lora_dropout", "0.1"] + extra)
        }
    }

    func testDPOWithRecomputationEqualsSavedActivationsOnTwoRanks() throws {
        try compare("recompute-dpo") { output, extra in
            try DPOFixtures.arguments(output: output, extra: ["--num_train_epochs", "1.0"] + extra)
        }
    }

    func testDefaultFollowsMemoryAndImpossibleBudgetsAreRefused() throws {
        let output = TrainingFixtures.outputDirectory("recompute-default")
        let run = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(output: output, extra: ["--max_steps", "1"]))
        XCTAssertEqual(run.status, 0, run.standardError)
        XCTAssertTrue(run.standardError.contains("activation recomputation off: activations of 1 rank(s)"), run.standardError)
        XCTAssertTrue(run.standardError.contains("which the saved activations fit"), run.standardError)

        let both = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(
            output: TrainingFixtures.outputDirectory("recompute-both"),
            extra: ["--gradient_checkpointing", "true", "--disable_gradient_checkpointing"]), ranks: 2)
        XCTAssertNotEqual(both.status, 0)
        XCTAssertTrue(both.standardError.contains("contradict each other"), both.standardError)

        // 2^31 tokens of even the tiny model's activations exceed any node this runs on; refused before allocation.
        let huge = try KnowTuneRunner.run(try TrainingFixtures.trainArguments(
            output: TrainingFixtures.outputDirectory("recompute-huge"), extra: ["--token_budget", "2147483648"]), ranks: 2, timeout: 120)
        XCTAssertNotEqual(huge.status, 0)
        XCTAssertEqual(huge.reason, .exit, huge.standardError)
        XCTAssertTrue(huge.standardError.contains("even with recomputation"), huge.standardError)
        XCTAssertTrue(huge.standardError.contains("--token_budget 2147483648"), huge.standardError)
    }
}
