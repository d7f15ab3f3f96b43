// Implements DPO (LLaMA-Factory 0.5.3 `CustomDPOTrainer` over TRL 0.7.11) as a training objective: a unit is a
// preference pair (its two sequences stay on one rank); the policy runs over a micro-batch of pairs, the DPO loss of
// each pair (DPOLoss) becomes per-token weights, and the backward pass accumulates the gradient. The batch loss is the
// mean over all pairs of the global batch (each rank adds its pairs' losses divided by the global pair count), so N
// ranks reproduce 1 rank. Its preparation step is the reference pass: log-probs of every pair under the reference,
// computed once (ReferenceLogProbabilities). Does not run the loop or evaluate (the release's scripts do not).
//
// Metrics (TRL `DPOTrainer.store_metrics`/`log`): per step, the means over the step's pairs of rewards/chosen,
// rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen, logps/rejected, all-reduced over ranks (TRL
// logs rank 0's own micro-batches only); the loop logs their mean over the steps since the last log and adds the
// steps after the last log to the train summary, as TRL's `log` override does. TRL's logits/chosen and
// logits/rejected (means over every vocabulary logit) are not computed: the engine never materialises full logits.
import Foundation
import KnowTuneData
import KnowTuneDistributed
import KnowTuneModel

public final class DPOObjective: TrainingObjective {
    let loss: DPOLoss
    let train: [EncodedPair]
    let reference: ReferenceLogProbabilities
    /// Pairs of one prompt (`--dpo_group_by_prompt`): kept together, their shared sequences computed once.
    public let trainUnitGroups: TrainingUnitGroups?
    private let plan: ActivationPlan
    private let passWorkload: PassWorkload
    /// The current step's global pair count.
    private var pairCount = 1.0

    public let title = "DPO training"
    public let unitName = "pairs"
    public let stage = "dpo"
    public let trainTokenCounts: [Int]
    public let validationTokenCounts: [Int] = []
    public let longestSequence: Int
    public let throughput = ThroughputUnit(name: "pairs", abbreviation: "pairs/s", decimals: 2)
    public let metricNames = ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"]
    public let metricsInLogLine = ["rewards/margins", "rewards/accuracies"]
    /// The loss, then DPOMetricSums' seven sums.
    public let scalarCount = 8

    public init(arguments: TrainingArguments, model: LlamaConfiguration, loraLayout: LoRALayout, train: [EncodedPair],
                reference: ReferenceLogProbabilities, recomputesLayers: Bool = false) throws {
        precondition(reference.chosen.count == train.count, "one reference value per training pair")
        loss = try DPOLoss(arguments: arguments)
        self.train = train
        self.reference = reference
        trainUnitGroups = DPOPairBatch.promptGroups(train, enabled: arguments.finetuning.dpoGroupByPrompt)
        let capacity = DPOPairBatch.capacity(train, groups: trainUnitGroups, tokenBudget: arguments.training.tokenBudget)
        trainTokenCounts = train.map(\.tokenCount)
        longestSequence = capacity.sequence
        passWorkload = PassWorkload(model)
        plan = ActivationPlan(model: model, loraLayout: loraLayout, tokenCapacity: capacity.tokens, sequenceCapacity: capacity.sequence,
                              recomputesLayers: recomputesLayers)
    }

    /// Activation plan sizes for `pairs` under `arguments` (prompt groups as `--dpo_group_by_prompt` makes them).
    public static func planCapacity(arguments: TrainingArguments, pairs: [EncodedPair]) -> (tokens: Int, sequence: Int) {
        DPOPairBatch.capacity(pairs, groups: DPOPairBatch.promptGroups(pairs, enabled: arguments.finetuning.dpoGroupByPrompt),
                              tokenBudget: arguments.training.tokenBudget)
    }

    /// The preparation step: the reference log-probs of `pairs` (sharded over the ranks), then the objective.
    public static func prepare(arguments: TrainingArguments, model: LoadedModel, loraLayout: LoRALayout, pairs: [EncodedPair],
                               referenceModel: LoadedModel?, communicator: any Communicator,
                               recomputesLayers: Bool = false) throws -> DPOObjective {
        let groups = DPOPairBatch.promptGroups(pairs, enabled: arguments.finetuning.dpoGroupByPrompt)
        let longest = DPOPairBatch.capacity(pairs, groups: groups, tokenBudget: arguments.training.tokenBudget).sequence
        let weights = referenceModel?.weights ?? model.weights
        let decoder = LlamaDecoder(weights: weights, maxPositions: Trainer.positions(arguments, model: weights.configuration, longest: longest))
        let reference = try withExtendedLifetime(referenceModel) {
            try ReferenceLogProbabilities.compute(pairs: pairs, groups: groups, decoder: decoder,
                                                  tokenBudget: arguments.training.tokenBudget, communicator: communicator)
        }
        return try DPOObjective(arguments: arguments, model: model.configuration, loraLayout: loraLayout, train: pairs,
                                reference: reference, recomputesLayers: recomputesLayers)
    }

    public var summary: String {
        let grouping = trainUnitGroups.map { "pairs grouped by prompt (\($0.groupCount) groups)" } ?? "pair-level order"
        return "loss \(loss.kind.rawValue) beta \(loss.beta) ftx \(loss.ftx), \(grouping)"
    }
    public var finalMetrics: [String: Double] { ["reference_runtime": (reference.seconds * 10000).rounded() / 10000] }

    public func throughputAmount(ofUnit unit: Int) -> Int { 1 }

    public func tokenCount(ofUnits units: [Int]) -> Int {
        DPOPairBatch.tokenCount(units.map { train[$0] }, sharingSequences: trainUnitGroups != nil)
    }

    public func workload(ofUnits units: [Int]) -> Double {
        passWorkload.flops(of: DPOPairBatch(units.map { train[$0] }, sharingSequences: trainUnitGroups != nil).packed)
    }

    public func beginStep(batch: [Int], step: Int) {
        // The mean over every pair of the global batch: each pair's loss and gradient carry 1/P on whichever rank.
        pairCount = Double(max(batch.count, 1))
    }

    public func accumulate(units: [Int], context: PassContext) -> [Double] {
        let batch = DPOPairBatch(units.map { train[$0] }, sharingSequences: trainUnitGroups != nil)
        let packed = batch.packed
        // TRL disables dropout in DPO (`disable_dropout_in_model`), so no mask here.
        let logProbabilities = context.decoder.forward(batch: packed, plan: plan, lora: context.parameters)
        let policy = batch.sequenceSums(logProbabilities)
        var lossSum = 0.0
        var sums = DPOMetricSums()
        var sequenceWeights = [Double](repeating: 0, count: packed.sequenceCount)
        for (k, unit) in units.enumerated() {
            let chosen = batch.chosenSequence[k], rejected = batch.rejectedSequence[k]
            let terms = loss.terms(DPOLoss.Pair(
                policyChosen: policy[chosen], policyRejected: policy[rejected],
                referenceChosen: reference.chosen[unit], referenceRejected: reference.rejected[unit],
                chosenLength: train[unit].chosen.count))
            lossSum += terms.loss / pairCount
            sums.add(terms, policyChosen: policy[chosen], policyRejected: policy[rejected])
            // The engine's loss is Σ w·(−log p), so a token of sequence s gets w = −∂L/∂logp_s, summed over the
            // pairs that share s.
            sequenceWeights[chosen] += -terms.gradientChosen / pairCount
            sequenceWeights[rejected] += -terms.gradientRejected / pairCount
        }
        if sequenceWeights.contains(where: { $0 != 0 }) {  // none, e.g., under a saturated hinge
            let weights = packed.targetSequence.map { Float(sequenceWeights[$0]) }
            context.decoder.backward(batch: packed, plan: plan, lora: context.parameters, gradients: context.gradients, weights: weights)
        }
        return [lossSum] + sums.array
    }

    public func metrics(fromReduced sums: [Double]) -> [Double] {
        let means = DPOMetricSums(array: sums).means
        return metricNames.map { means[$0] ?? .nan }
    }

    public func evaluate(units: [Int], context: PassContext) -> (negativeLogLikelihood: Double, targets: Double) { (0, 0) }
}
