// The DPO pair of the golden dpo.json on the real SmolLM2 model: the pairwise encoder reproduces its ids, the
// four log-prob sums (policy = base + the README's r=8 LoRA pattern, reference = the adapter disabled, computed by
// ReferenceLogProbabilities), the rewards, the SFT term, the total loss, and the gradient norm of the total loss
// through the training loop's own step, all within the README's fp32 tolerances.
import Foundation
import KnowTuneDistributed
import KnowTuneTestSupport
import XCTest
@testable import KnowTuneData
@testable import KnowTuneModel
@testable import KnowTuneTraining

final class DPOGoldenTests: XCTestCase {
    /// README tolerances against the fp64 values: log-prob sums 5e-3 absolute; loss, total, rewards 1e-4; the
    /// gradient 1e-3 relative.
    let logProbabilityTolerance = 5e-3
    let lossTolerance = 1e-4
    let gradientTolerance = 1e-3

    private static func ids(_ value: Any?) -> [Int32] { (value as? [Any] ?? []).compactMap { ($0 as? NSNumber)?.int32Value } }
    private static func number(_ value: Any?) -> Double { (value as? NSNumber)?.doubleValue ?? .nan }

    private static func fillPattern(_ buffer: LoRABuffer) { GoldenModel.fillPattern(buffer) }

    func testGoldenPairLogProbabilitiesLossAndGradient() throws {
        let golden = try TestPaths.goldenJSON("dpo.json")
        let expected = golden["fp64"] as? [String: Any] ?? [:]
        let model = try GoldenModel.smolLM2()

        // The encoder turns the record into the golden ids (alpaca template, EOS appended, separate tokenisation).
        let instruction = "What are the different ways to score in American football?"
        let example = AlpacaExample(instruction: instruction, responses: [golden["chosen"] as? String ?? "", golden["rejected"] as? String ?? ""])
        let (pairs, report) = try PairwiseEncoder(template: .alpaca, tokenizer: model.tokenizer).encode([example])
        XCTAssertEqual(report.kept, 1)
        let pair = try XCTUnwrap(pairs.first)
        XCTAssertEqual(pair.prompt, Self.ids(golden["prompt_ids"]))
        XCTAssertEqual(pair.chosen, Self.ids(golden["chosen_response_ids"]))
        XCTAssertEqual(pair.rejected, Self.ids(golden["rejected_response_ids"]))
        XCTAssertEqual(pair.chosen.count, 90)

        // Reference: the same weights with the adapter disabled, through the precompute path.
        let communicator = SingleProcessCommunicator(hostname: "golden")
        let reference = try ReferenceLogProbabilities.compute(pairs: pairs, decoder: LlamaDecoder(weights: model.weights, maxPositions: 512),
                                                              tokenBudget: 1024, communicator: communicator)
        XCTAssertEqual(reference.chosen[0], Self.number(expected["ref_chosen_logp"]), accuracy: logProbabilityTolerance)
        XCTAssertEqual(reference.rejected[0], Self.number(expected["ref_rejected_logp"]), accuracy: logProbabilityTolerance)

        // Policy: base + r=8/alpha=16 q_proj,v_proj pattern.
        let lora = LoRABuffer(layout: LoRALayout(model: model.configuration,
                                                 lora: LoRAConfiguration(rank: 8, alpha: 16, targets: [.query, .value])))
        Self.fillPattern(lora)
        let batch = DPOPairBatch(pairs, sharingSequences: false)
        let plan = ActivationPlan(model: model.configuration, loraLayout: lora.layout, tokenCapacity: batch.packed.tokenCount,
                                  sequenceCapacity: batch.packed.longestSequence)
        let decoder = LlamaDecoder(weights: model.weights, maxPositions: 512)
        let policy = batch.sequenceSums(decoder.forward(batch: batch.packed, plan: plan, lora: lora))
        XCTAssertEqual(policy[0], Self.number(expected["policy_chosen_logp"]), accuracy: logProbabilityTolerance)
        XCTAssertEqual(policy[1], Self.number(expected["policy_rejected_logp"]), accuracy: logProbabilityTolerance)

        let objective = DPOLoss(kind: .sigmoid, beta: 0.1, ftx: 0.2)
        let terms = objective.terms(.init(policyChosen: policy[0], policyRejected: policy[1], referenceChosen: reference.chosen[0],
                                          referenceRejected: reference.rejected[0], chosenLength: pair.chosen.count))
        XCTAssertEqual(terms.logits * objective.beta, Self.number(expected["dpo_logits"]), accuracy: lossTolerance)
        XCTAssertEqual(terms.preferenceLoss, Self.number(expected["dpo_loss"]), accuracy: lossTolerance)
        XCTAssertEqual(terms.sftLoss, Self.number(expected["sft_loss"]), accuracy: lossTolerance)
        XCTAssertEqual(terms.loss, Self.number(expected["total_loss"]), accuracy: lossTolerance)
        XCTAssertEqual(terms.chosenReward, Self.number(expected["reward_chosen"]), accuracy: lossTolerance)
        XCTAssertEqual(terms.rejectedReward, Self.number(expected["reward_rejected"]), accuracy: lossTolerance)
        XCTAssertEqual(terms.chosenReward - terms.rejectedReward, Self.number(expected["reward_margin"]), accuracy: lossTolerance)

        // The gradient of the total loss, through the trainer's own step (one pair, one rank): the norm it
        // reports is taken before clipping, and the step loss is the total.
        var arguments = TrainingArguments()
        arguments.model.modelNameOrPath = TestPaths.smolLM2
        arguments.training.outputDir = NSTemporaryDirectory() + "knowtune-dpo-golden-\(getpid())"
        arguments.training.perDeviceTrainBatchSize = 1
        arguments.finetuning.dpoBeta = 0.1
        arguments.finetuning.dpoFTX = 0.2
        arguments.training.learningRate = 1e-5
        let logger = RankLogger(rank: 0, worldSize: 1, hostname: "golden", sink: { _ in })
        let dpo = try DPOObjective(arguments: arguments, model: model.configuration, loraLayout: lora.layout, train: pairs,
                                   reference: reference)
        let trainer = try Trainer(objective: dpo, arguments: arguments, communicator: communicator, logger: logger, model: model, lora: lora)
        let result = try trainer.trainStep([0], step: 1)
        let metrics = result.metrics
        let expectedNorm = Self.number(expected["grad_global_l2_total_loss"])
        XCTAssertEqual(result.gradientNorm, expectedNorm, accuracy: gradientTolerance * expectedNorm)
        XCTAssertEqual(result.loss, Self.number(expected["total_loss"]), accuracy: lossTolerance)
        XCTAssertEqual(metrics[0], Self.number(expected["reward_chosen"]), accuracy: lossTolerance)
        XCTAssertEqual(metrics[1], Self.number(expected["reward_rejected"]), accuracy: lossTolerance)
        XCTAssertEqual(metrics[2], 1)  // margin > 0
        XCTAssertEqual(metrics[4], Self.number(expected["policy_chosen_logp"]), accuracy: logProbabilityTolerance)
        print(String(format: "DPO golden: πc %.6f πr %.6f rc %.6f rr %.6f loss %.9f total %.9f grad %.9f (golden %.9f)",
                     policy[0], policy[1], reference.chosen[0], reference.rejected[0], terms.preferenceLoss, terms.loss,
                     result.gradientNorm, expectedNorm))
    }
}
