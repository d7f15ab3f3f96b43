// Tests grouped DPO (`--dpo_group_by_prompt`): with KC-shaped pairs (three pairs per prompt sharing the chosen
// answer) the step over the same pairs gives the pair-level loss, gradient and TRL metrics while running the prompt
// and the chosen answer once; the reference precompute gives the same log-probs; the grouped order keeps groups whole and equals the
// ungrouped order when every prompt is distinct.
import Foundation
import KnowTuneData
import KnowTuneDistributed
import KnowTuneModel
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneTraining

final class GroupedDPOTests: XCTestCase {
    static let configuration = LlamaConfiguration(
        vocabularySize: 259, hiddenSize: 32, intermediateSize: 48, layerCount: 2, headCount: 4, kvHeadCount: 2,
        tieWordEmbeddings: true, maxPositionEmbeddings: 256, eosTokenId: 2)

    /// Four prompts with three pairs each (one chosen answer, three rejected ones), then two prompts of one pair.
    static func kcPairs() -> [EncodedPair] {
        var pairs: [EncodedPair] = []
        for question in 0..<6 {
            let prompt = RandomModel.tokens(9 + question, seed: UInt64(100 + question), vocabulary: 256).map { $0 + 3 }
            let chosen = RandomModel.tokens(7, seed: UInt64(200 + question), vocabulary: 256).map { $0 + 3 } + [2]
            for variant in 0..<(question < 4 ? 3 : 1) {
                let rejected = RandomModel.tokens(5 + variant, seed: UInt64(300 + 10 * question + variant), vocabulary: 256).map { $0 + 3 } + [2]
                pairs.append(EncodedPair(prompt: prompt, chosen: chosen, rejected: rejected, index: pairs.count))
            }
        }
        return pairs
    }

    func testGroupedOrderKeepsGroupsWholeAndEqualsUngroupedForDistinctKeys() throws {
        let distinct = TrainingUnitGroups(keys: Array(0..<50))
        XCTAssertFalse(distinct.hasSharedGroups)
        for epoch in 0..<3 {
            XCTAssertEqual(distinct.order(epoch: epoch, seed: 42), StepPlan.order(epoch: epoch, trainCount: 50, seed: 42))
        }
        let groups = DPOPairBatch.promptGroups(Self.kcPairs(), enabled: true)!
        XCTAssertEqual(groups.groupCount, 6)
        XCTAssertEqual(groups.members[1], [3, 4, 5])
        let order = groups.order(epoch: 1, seed: 7)
        XCTAssertEqual(order.sorted(), Array(0..<14))
        // Every group's units are adjacent in the order.
        for members in groups.members {
            let positions = members.map { order.firstIndex(of: $0)! }
            XCTAssertEqual(positions.max()! - positions.min()!, members.count - 1, "\(members) in \(order)")
        }
        XCTAssertEqual(groups.clusters(of: [3, 12, 4, 0, 5]), [[0, 2, 4], [1], [3]])
    }

    func testSharedSequencesAreCountedOnce() {
        let pairs = Self.kcPairs()
        let first = Array(pairs[0..<3])
        let separate = DPOPairBatch(first, sharingSequences: false)
        let shared = DPOPairBatch(first, sharingSequences: true)
        XCTAssertEqual(separate.packed.sequenceCount, 6)
        // The prompt once (a prefix without its last token), then the chosen and three rejected answers continuing it.
        XCTAssertEqual(shared.packed.sequenceCount, 5)
        XCTAssertEqual(shared.packed.prefixSequence, [-1, 0, 0, 0, 0])
        XCTAssertEqual(shared.packed.length(ofSequence: 0), first[0].prompt.count - 1)
        XCTAssertEqual(shared.chosenSequence, [1, 1, 1])
        XCTAssertEqual(shared.rejectedSequence, [2, 3, 4])
        XCTAssertEqual(shared.packed.targetCount, separate.packed.targetCount - 2 * first[0].chosen.count)
        // The chosen answer continues the prompt at the prompt's last position.
        let chosenStart = shared.packed.sequenceStarts[1]
        XCTAssertEqual(shared.packed.positions[chosenStart], Int32(first[0].prompt.count - 1))
        XCTAssertEqual(shared.packed.tokens[chosenStart], first[0].prompt.last)
        XCTAssertEqual(DPOPairBatch.tokenCount(first, sharingSequences: true), shared.packed.tokenCount)
        XCTAssertEqual(DPOPairBatch.tokenCount(first, sharingSequences: false), separate.packed.tokenCount)
        XCTAssertLessThan(shared.packed.tokenCount, separate.packed.tokenCount)
    }

    /// One optimizer step over all pairs, grouped or pair-level: its loss, gradient (before clipping) and metrics.
    private func step(grouped: Bool, tokenBudget: Int) throws -> (loss: Double, gradients: [Float], metrics: [Double], reference: ReferenceLogProbabilities) {
        let pairs = Self.kcPairs()
        let weights = RandomModel.weights(Self.configuration, seed: 11)
        let model = LoadedModel(configuration: Self.configuration, weights: weights, tokenizer: ByteTokenizer(), source: "random", format: "test")
        let lora = RandomModel.lora(LoRAConfiguration(rank: 4, alpha: 8, targets: [.query, .value]), model: Self.configuration, seed: 5, scale: 0.05)
        var arguments = TrainingArguments()
        arguments.training.outputDir = NSTemporaryDirectory() + "knowtune-grouped-dpo-\(getpid())-\(grouped)"
        arguments.training.perDeviceTrainBatchSize = pairs.count
        arguments.training.maxGradNorm = 0
        arguments.training.tokenBudget = tokenBudget
        arguments.finetuning.dpoFTX = 0.2
        arguments.finetuning.dpoGroupByPrompt = grouped
        let communicator = SingleProcessCommunicator(hostname: "grouped")
        let logger = RankLogger(rank: 0, worldSize: 1, hostname: "grouped", sink: { _ in })
        let objective = try DPOObjective.prepare(arguments: arguments, model: model, loraLayout: lora.layout, pairs: pairs,
                                                 referenceModel: nil, communicator: communicator)
        XCTAssertEqual(objective.trainUnitGroups != nil, grouped)
        let trainer = try Trainer(objective: objective, arguments: arguments, communicator: communicator, logger: logger, model: model, lora: lora)
        let result = try trainer.trainStep(Array(0..<pairs.count), step: 1)
        return (result.loss, Array(UnsafeBufferPointer(start: trainer.gradients.values, count: trainer.gradients.count)), result.metrics,
                objective.reference)
    }

    func testGroupedStepEqualsPairLevelStep() throws {
        for budget in [1024, 60] {  // one micro-batch; one cluster per micro-batch
            let pairLevel = try step(grouped: false, tokenBudget: budget)
            let grouped = try step(grouped: true, tokenBudget: budget)
            XCTAssertEqual(grouped.loss, pairLevel.loss, accuracy: 1e-6 * abs(pairLevel.loss))
            let difference = zip(grouped.gradients, pairLevel.gradients).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }.squareRoot()
            let norm = pairLevel.gradients.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
            XCTAssertGreaterThan(norm, 0)
            XCTAssertLessThanOrEqual(difference / norm, 1e-6, "budget \(budget)")
            XCTAssertEqual(grouped.metrics.count, pairLevel.metrics.count)
            for (a, b) in zip(grouped.metrics, pairLevel.metrics) { XCTAssertEqual(a, b, accuracy: 1e-6 * max(abs(b), 1)) }
            for (a, b) in zip(grouped.reference.chosen + grouped.reference.rejected, pairLevel.reference.chosen + pairLevel.reference.rejected) {
                XCTAssertEqual(a, b, accuracy: 1e-6 * abs(b))
            }
        }
    }

    /// Under `mpirun -np 2` with KC-shaped data, grouped DPO reaches the 1-rank adapter, and says it grouped.
    func testTwoRanksReachTheSameAdapterAsOneRankWhenGrouped() throws {
        func arguments(_ output: String, batch: Int) throws -> [String] {
            try DPOFixtures.arguments(output: output, extra: ["--dataset", "pairs_shared", "--per_device_train_batch_size", String(batch),
                                                              "--max_steps", "4", "--save_strategy", "no"])
        }
        let one = TrainingFixtures.outputDirectory("dpo-grouped-one-rank")
        let two = TrainingFixtures.outputDirectory("dpo-grouped-two-ranks")
        let single = try KnowTuneRunner.run(try arguments(one, batch: 8))
        XCTAssertEqual(single.status, 0, single.standardError)
        XCTAssertTrue(single.standardError.contains("pairs grouped by prompt (8 groups)"), single.standardError)
        let double = try KnowTuneRunner.run(try arguments(two, batch: 4), ranks: 2)
        XCTAssertEqual(double.status, 0, double.standardError)
        let difference = maxAbsoluteDifference(try readAdapter(one), try readAdapter(two))
        XCTAssertLessThanOrEqual(difference, 1e-5)
        let pairLevel = TrainingFixtures.outputDirectory("dpo-pair-level")
        let ungrouped = try KnowTuneRunner.run(try arguments(pairLevel, batch: 8) + ["--dpo_group_by_prompt", "false"])
        XCTAssertEqual(ungrouped.status, 0, ungrouped.standardError)
        XCTAssertTrue(ungrouped.standardError.contains("pair-level order"), ungrouped.standardError)
        // Another order of the pairs: another adapter.
        XCTAssertGreaterThan(maxAbsoluteDifference(try readAdapter(one), try readAdapter(pairLevel)), 1e-4)
        print("grouped DPO 1 rank vs 2 ranks: max |Δ adapter| = \(difference)")
    }
}
