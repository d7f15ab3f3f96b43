// The `train` argument table (HfArgumentParser conventions, old and new spellings, YAML), the step plan,
// learning-rate schedules and the token-balanced sharder.
import Foundation
import XCTest
@testable import KnowTuneTraining
import KnowTuneDistributed
import KnowTuneModel

final class TrainingArgumentTests: XCTestCase {
    func testBooleansFollowHfArgumentParser() throws {
        let parsed = try TrainingArgumentParser.parse([
            "--do_train", "--plot_loss", "false", "--load_best_model_at_end", "1", "--resume_lora_training", "1",
            "--checkpoint_dir", "a,b", "--bf16", "--overwrite_cache", "--learning_rate=1e-4", "--lora-rank", "4",
        ])
        let a = parsed.arguments
        XCTAssertTrue(a.training.doTrain)
        XCTAssertFalse(a.finetuning.plotLoss)
        XCTAssertTrue(a.training.loadBestModelAtEnd)
        XCTAssertFalse(a.model.createNewAdapter, "--resume_lora_training 1 continues the adapter")
        XCTAssertEqual(a.model.adapterPaths, ["a", "b"])
        XCTAssertEqual(a.training.learningRate, 1e-4)
        XCTAssertEqual(a.finetuning.loraRank, 4)
        XCTAssertEqual(parsed.ignoredFlags, ["bf16", "overwrite_cache"])
        XCTAssertTrue(try TrainingArgumentParser.parse(["--resume_lora_training", "0"]).arguments.model.createNewAdapter)
    }

    func testUnknownFlagsAndBadValuesAreErrors() {
        XCTAssertThrowsError(try TrainingArgumentParser.parse(["--no_such_flag", "1"])) { XCTAssertTrue("\($0)".contains("--no_such_flag")) }
        XCTAssertThrowsError(try TrainingArgumentParser.parse(["--lora_rank", "eight"])) { XCTAssertTrue("\($0)".contains("whole number")) }
        XCTAssertThrowsError(try TrainingArgumentParser.parse(["--do_train", "maybe"]))
        XCTAssertThrowsError(try TrainingArgumentParser.parse(["--learning_rate"])) { XCTAssertTrue("\($0)".contains("needs a value")) }
    }

    func testYAMLConfigurationWithCommandLineOverrides() throws {
        let path = NSTemporaryDirectory() + "kt-config-\(getpid()).yaml"
        try """
            stage: sft
            do_train: true
            dataset: [dolly_train, lima_train]
            lora_target: q_proj,v_proj
            learning_rate: 5.0e-5
            eval_steps: 0.1
            bf16: true
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let parsed = try TrainingArgumentParser.parse([path, "--learning_rate", "2e-5"])
        XCTAssertEqual(parsed.arguments.data.datasetNames, ["dolly_train", "lima_train"])
        XCTAssertEqual(parsed.arguments.training.learningRate, 2e-5)
        XCTAssertEqual(parsed.arguments.training.evalSteps, 0.1)
        XCTAssertTrue(parsed.arguments.training.doTrain)
        try "lora_rnak: 4\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try TrainingArgumentParser.parse([path])) { XCTAssertTrue("\($0)".contains("lora_rnak")) }
    }

    /// Files that crashed Yams (a stack overflow from 100,000 nested brackets) or took 17 GB (billion laughs) before
    /// the screen: each is refused with a reason, and a 32,000-deep document within the size limit parses on the
    /// parser's own stack and is refused as not flat.
    func testHostileYAMLConfigurationsAreRefused() throws {
        func refusal(_ text: String) -> String {
            do {
                _ = try ConfigurationYAML.arguments(in: Data(text.utf8), path: "c.yaml")
                return "accepted"
            } catch { return "\(error)" }
        }
        XCTAssertTrue(refusal("a: " + String(repeating: "[", count: 100_000)).contains("larger than 64 KiB"))
        XCTAssertTrue(refusal("a: " + String(repeating: "[", count: 32_000) + String(repeating: "]", count: 32_000))
            .contains("a: a list may hold only scalars"))
        XCTAssertTrue(refusal("a:\n" + String(repeating: "- ", count: 32_000) + "x").contains("a list may hold only scalars"))
        XCTAssertTrue(refusal("a: " + String(repeating: "{x: ", count: 10_000) + "1" + String(repeating: "}", count: 10_000))
            .contains("a: expected a scalar or a list of scalars"))
        let laughs = "a: &a [lol, lol]\nb: &b [*a, *a]\nc: [*b, *b]\n"
        XCTAssertTrue(refusal(laughs).contains("anchors and aliases"), refusal(laughs))
        XCTAssertTrue(refusal("- just\n- a list\n").contains("expected a mapping"))
        // Found by fuzzing: Yams' `load` force-unwrapped a key that is not a string.
        XCTAssertTrue(refusal("? [a, b]\n: 1\n").contains("an argument name must be a plain word"))
        XCTAssertTrue(refusal("? KnowTuninga@s: )").contains("an argument name must be a plain word"))
        // Also found by fuzzing: Yams' integer constructor trapped on an overflowing sexagesimal number.
        XCTAssertEqual(try ConfigurationYAML.arguments(in: Data("a: 1:99999999999999999999999\n".utf8), path: "c.yaml").first?.value,
                       "1:99999999999999999999999")
        let flat = try ConfigurationYAML.arguments(in: Data("b: [x, true]\na: null\nc: 1.5e-4\n".utf8), path: "c.yaml")
        XCTAssertEqual(flat.map(\.key), ["a", "b", "c"])
        XCTAssertEqual(flat.map(\.value), ["None", "x,true", "1.5e-4"])
    }

    func testStepPlanFollowsHFRatios() throws {
        var a = TrainingArguments()
        a.training.perDeviceTrainBatchSize = 16
        a.training.numTrainEpochs = 3
        a.training.evaluationStrategy = .steps
        a.training.evalSteps = 0.1
        a.training.saveSteps = 0.1
        a.training.loadBestModelAtEnd = true
        // The notes' worked example: 930 rows, batch 16 → 59 batches/epoch, 177 steps, eval/save every 18.
        let plan = try StepPlan(arguments: a, trainCount: 930, worldSize: 1)
        XCTAssertEqual([plan.stepsPerEpoch, plan.maxSteps, plan.evalSteps ?? 0, plan.saveSteps], [59, 177, 18, 18])
        // Two ranks of 8 form the same global batch of 16.
        a.training.perDeviceTrainBatchSize = 8
        XCTAssertEqual(try StepPlan(arguments: a, trainCount: 930, worldSize: 2), plan)
        // Each epoch's batches partition the data.
        let epoch = (1...59).flatMap { plan.batch(forStep: $0, trainCount: 930, seed: 42) }
        XCTAssertEqual(epoch.sorted(), Array(0..<930))
        XCTAssertNotEqual(plan.batch(forStep: 1, trainCount: 930, seed: 42), plan.batch(forStep: 60, trainCount: 930, seed: 42))
    }

    func testSchedulesMatchHF() throws {
        let cosine = try LearningRateSchedule(kind: "cosine", baseRate: 1e-4, totalSteps: 10, warmupSteps: 0, warmupRatio: 0)
        XCTAssertEqual(cosine.rate(forStep: 1), 1e-4, accuracy: 1e-12)
        XCTAssertEqual(cosine.rate(forStep: 6), 1e-4 * 0.5, accuracy: 1e-12)
        XCTAssertEqual(cosine.loggedRate(afterStep: 10), 0, accuracy: 1e-12)
        let linear = try LearningRateSchedule(kind: "linear", baseRate: 1, totalSteps: 10, warmupSteps: 0, warmupRatio: 0.2)
        XCTAssertEqual(linear.warmupSteps, 2)
        XCTAssertEqual([linear.rate(forStep: 1), linear.rate(forStep: 2), linear.rate(forStep: 3), linear.rate(forStep: 10)],
                       [0, 0.5, 1, 0.125])
        XCTAssertThrowsError(try LearningRateSchedule(kind: "polynomial", baseRate: 1, totalSteps: 1, warmupSteps: 0, warmupRatio: 0))
    }

    func testShardsBalanceTokensAndCoverTheBatch() {
        let counts = [100, 10, 60, 50, 40, 5, 5]
        let shards = BatchSharder.shard(tokenCounts: counts, rankCount: 2)
        XCTAssertEqual(shards.flatMap { $0 }.sorted(), Array(0..<7))
        let loads = shards.map { $0.map { counts[$0] }.reduce(0, +) }
        XCTAssertLessThanOrEqual(abs(loads[0] - loads[1]), 10)
        // More ranks than examples: some ranks get nothing, and still every rank takes the step.
        XCTAssertEqual(BatchSharder.shard(tokenCounts: [3], rankCount: 3).map(\.count), [1, 0, 0])
        XCTAssertEqual(BatchSharder.microBatches([0, 1, 2, 3], tokenCounts: [5, 5, 20, 1], budget: 10), [[0, 1], [2], [3]])
    }

    /// Greedy placement puts 3 + 2 + 2 against 3 + 2; a swap then evens the ranks to 3 + 3 against 2 + 2 + 2.
    func testShardsImproveOnGreedyPlacementBySwaps() {
        let costs: [Double] = [3, 3, 2, 2, 2]
        let shards = BatchSharder.shard(costs: costs, rankCount: 2)
        XCTAssertEqual(shards.flatMap { $0 }.sorted(), Array(0..<5))
        XCTAssertEqual(shards.map { $0.map { costs[$0] }.reduce(0, +) }, [6, 6])
        XCTAssertEqual(shards, BatchSharder.shard(costs: costs, rankCount: 2), "the same split on every rank")
        // Three ranks, costs that greedy placement leaves at 7 on the busiest rank: moves bring it to the optimum 6.
        let three: [Double] = [4, 3, 3, 2, 2, 2, 2]
        let split = BatchSharder.shard(costs: three, rankCount: 3)
        XCTAssertEqual(split.flatMap { $0 }.sorted(), Array(0..<7))
        XCTAssertEqual(split.map { $0.map { three[$0] }.reduce(0, +) }.max(), 6)
        // Equal costs never trade places forever.
        XCTAssertEqual(BatchSharder.shard(costs: [1, 1, 1], rankCount: 2).map(\.count).sorted(), [1, 2])
    }
}

final class AdamWTests: XCTestCase {
    /// Two steps of torch.optim.AdamW computed by hand (lr 0.1, β 0.9/0.999, ε 1e-8, weight decay 0.01).
    func testTwoStepsMatchTorchFormulas() throws {
        let model = KnowTuneModel.LlamaConfiguration(vocabularySize: 4, hiddenSize: 4, intermediateSize: 4, layerCount: 1,
                                                     headCount: 1, kvHeadCount: 1)
        let layout = KnowTuneModel.LoRALayout(model: model, lora: KnowTuneModel.LoRAConfiguration(rank: 1, alpha: 1, targets: [.query]))
        let parameters = KnowTuneModel.LoRABuffer(layout: layout), gradients = KnowTuneModel.LoRABuffer(layout: layout)
        parameters.values[0] = 1
        let optimizer = AdamW(layout: layout, configuration: AdamWConfiguration(weightDecay: 0.01))
        var p = 1.0, m = 0.0, v = 0.0
        for (step, g) in [0.5, -0.25].enumerated() {
            gradients.values[0] = Float(g)
            optimizer.step(parameters: parameters, gradients: gradients, learningRate: 0.1)
            let t = Double(step + 1)
            p *= 1 - 0.1 * 0.01
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            p -= 0.1 / (1 - pow(0.9, t)) * m / ((v.squareRoot() / (1 - pow(0.999, t)).squareRoot()) + 1e-8)
            XCTAssertEqual(Double(parameters.values[0]), p, accuracy: 1e-6)
        }
        XCTAssertEqual(optimizer.stepCount, 2)
    }
}
