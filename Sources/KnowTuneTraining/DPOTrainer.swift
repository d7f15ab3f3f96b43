// Implements DPO LoRA training, data-parallel (LLaMA-Factory 0.5.3 `CustomDPOTrainer` over TRL 0.7.11, semantics
// §7): every rank runs the policy over its token-balanced share of each global batch of pairs (a pair's two
// sequences stay on one rank), turns the DPO loss into per-token weights, back-propagates, and the shared
// TrainerCore all-reduces the gradient, clips and steps AdamW. The batch loss is the mean over all pairs of the
// global batch (each rank adds its pairs' losses divided by the global pair count), so N ranks reproduce 1 rank.
// Reference log-probs come precomputed (ReferenceLogProbabilities). Does not parse flags, load models or evaluate.
//
// Metrics (TRL `DPOTrainer.store_metrics`/`log`): per step, the means over the step's pairs of rewards/chosen,
// rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen, logps/rejected, all-reduced over ranks (TRL
// logs rank 0's own micro-batches only); each log entry holds their mean over the steps since the last log, and
// the final train summary carries the steps after the last log, as TRL's `log` override does. TRL's
// logits/chosen and logits/rejected (means over every vocabulary logit) are not computed: the engine never
// materialises full logits.
import Foundation
import KnowTuneCheckpoint
import KnowTuneData
import KnowTuneDistributed
import KnowTuneModel
import KnowTuneTensor

public final class DPOTrainer {
    /// Parameters, optimizer, schedule, step arithmetic, logs and checkpoints (shared with SFT).
    let core: TrainerCore
    let objective: DPOObjective
    let train: [EncodedPair]
    let reference: ReferenceLogProbabilities
    private let plan: ActivationPlan
    /// Σ over the steps since the last log of each step's metric means (TRL key order below), and the step count.
    var metricsSinceLog = [Double](repeating: 0, count: DPOTrainer.metricKeys.count + 1)

    static let metricKeys = ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"]
    static let metricsCheckpointName = "dpo_metrics_since_log"

    public var arguments: TrainingArguments { core.arguments }
    public var globalStep: Int { core.globalStep }
    var communicator: any Communicator { core.communicator }
    var logger: RankLogger { core.logger }

    public init(arguments: TrainingArguments, communicator: any Communicator, logger: RankLogger, model: LoadedModel,
                lora: LoRABuffer, train: [EncodedPair], reference: ReferenceLogProbabilities) throws {
        precondition(reference.chosen.count == train.count, "one reference value per training pair")
        let capacity = DPOPairBatch.capacity(train, tokenBudget: arguments.tokenBudget)
        core = try TrainerCore(arguments: arguments, communicator: communicator, logger: logger, model: model, lora: lora,
                               trainCount: train.count, checkpointFormat: TrainerCheckpoint.dpoFormat,
                               maxPositions: capacity.sequence)
        objective = try DPOObjective(arguments: arguments)
        self.train = train
        self.reference = reference
        plan = ActivationPlan(model: model.configuration, loraLayout: lora.layout, tokenCapacity: capacity.tokens,
                              sequenceCapacity: capacity.sequence)
    }

    /// Continues from a checkpoint folder written by a DPO run.
    public func restore(from folder: String) throws {
        let extra = try TrainerCheckpoint.restore(core, from: folder, extra: [Self.metricsCheckpointName])
        guard let metrics = extra[Self.metricsCheckpointName], metrics.count == metricsSinceLog.count else {
            throw KnowTuneError.badFormat(path: folder, reason: "\(Self.metricsCheckpointName) has the wrong size")
        }
        metricsSinceLog = metrics
    }

    // MARK: - One optimizer step

    /// Forward, DPO weights and backward over this rank's share of `batch` (indices into `train`), then the shared
    /// update. Returns the step result and the step's metric means (TRL key order).
    func trainStep(_ batch: [Int], step: Int) throws -> (result: StepResult, metrics: [Double]) {
        communicator.step = step
        let pairs = batch.map { train[$0] }
        let tokenCounts = pairs.map(\.tokenCount)
        let mine = BatchSharder.shard(tokenCounts: tokenCounts, rankCount: communicator.size)[communicator.rank]
        // The mean over every pair of the global batch: each pair's loss and gradient carry 1/P on whichever rank.
        let pairCount = Double(max(batch.count, 1))
        core.gradients.zero()
        var lossSum = 0.0
        var sums = DPOMetricSums()
        for micro in BatchSharder.microBatches(mine, tokenCounts: tokenCounts, budget: arguments.tokenBudget) {
            let packed = DPOPairBatch.pack(micro.map { pairs[$0] })
            // TRL disables dropout in DPO (`disable_dropout_in_model`), so no mask here.
            let logProbabilities = core.decoder.forward(batch: packed, plan: plan, lora: core.parameters)
            let policy = DPOPairBatch.sequenceSums(logProbabilities, batch: packed)
            var sequenceWeights = [Double](repeating: 0, count: packed.sequenceCount)
            for (k, index) in micro.enumerated() {
                let global = batch[index]
                let terms = objective.terms(DPOObjective.Pair(
                    policyChosen: policy[2 * k], policyRejected: policy[2 * k + 1],
                    referenceChosen: reference.chosen[global], referenceRejected: reference.rejected[global],
                    chosenLength: pairs[index].chosen.count))
                lossSum += terms.loss / pairCount
                sums.add(terms, policyChosen: policy[2 * k], policyRejected: policy[2 * k + 1])
                // The engine's loss is Σ w·(−log p), so a token of sequence s gets w = −∂L/∂logp_s.
                sequenceWeights[2 * k] = -terms.gradientChosen / pairCount
                sequenceWeights[2 * k + 1] = -terms.gradientRejected / pairCount
            }
            guard sequenceWeights.contains(where: { $0 != 0 }) else { continue }  // e.g. a saturated hinge
            let weights = packed.targetSequence.map { Float(sequenceWeights[$0]) }
            core.decoder.backward(batch: packed, plan: plan, lora: core.parameters, gradients: core.gradients, weights: weights)
        }
        let result = try core.update(scalars: [lossSum] + sums.array, step: step)
        let reduced = DPOMetricSums(array: Array(result.scalars.dropFirst()))
        let means = reduced.means
        return (result, Self.metricKeys.map { means[$0] ?? .nan })
    }

    // MARK: - The loop

    public func run() throws {
        let steps = core.steps
        let startStep = globalStep
        logger.info("DPO training: \(train.count) pairs, global batch \(steps.globalBatchSize), \(steps.maxSteps) steps "
                    + "(\(steps.stepsPerEpoch)/epoch), loss \(objective.kind.rawValue) beta \(objective.beta) ftx \(objective.ftx), "
                    + "save every \(steps.saveSteps == Int.max ? "-" : String(steps.saveSteps)), lr \(arguments.learningRate) \(arguments.lrSchedulerType)")
        var stepsThisRun = 0
        var pairsThisRun = 0
        let started = Date()
        let faults = TrainingFaultInjection()
        for step in (startStep + 1)...max(startStep + 1, steps.maxSteps) where step <= steps.maxSteps {
            faults.beforeStep(step, rank: communicator.rank)
            let batch = steps.batch(forStep: step, trainCount: train.count, seed: arguments.seed)
            let (result, metrics) = try trainStep(batch, step: step)
            core.recordLoss(result.loss, step: step)
            for (i, value) in metrics.enumerated() { metricsSinceLog[i] += value }
            metricsSinceLog[metrics.count] += 1
            stepsThisRun += 1
            pairsThisRun += batch.count
            let epoch = steps.epoch(afterStep: step)

            if step % steps.loggingSteps == 0 {
                let pairsPerSecond = Double(pairsThisRun) / max(Date().timeIntervalSince(started), 1e-9)
                let loss = core.takeLoggedLoss()
                var entry: [String: Double] = [
                    "loss": loss.rounded, "grad_norm": result.gradientNorm, "learning_rate": core.schedule.loggedRate(afterStep: step),
                    "pairs_per_second": (pairsPerSecond * 100).rounded() / 100,
                ]
                let averaged = takeLoggedMetrics()
                entry.merge(averaged) { _, new in new }
                core.record(LogEntry(step: step, epoch: epoch, metrics: entry))
                logger.info(String(format: "step %d/%d  loss %.4f  grad_norm %.3f  lr %.3e  rewards/margins %.4f  rewards/accuracies %.3f  %.2f pairs/s  epoch %.2f",
                                   step, steps.maxSteps, loss.exact, result.gradientNorm, core.schedule.loggedRate(afterStep: step),
                                   averaged["rewards/margins"] ?? .nan, averaged["rewards/accuracies"] ?? .nan, pairsPerSecond, epoch))
            }
            if step % steps.saveSteps == 0 || result.stopRequested {
                try core.saveCheckpoint(step: step, epoch: epoch, extra: [Self.metricsCheckpointName: metricsSinceLog])
            }
            if result.stopRequested {
                logger.info("stop requested (SIGTERM/SIGUSR1): checkpoint-\(step) written; resume with --resume_from_checkpoint latest")
                throw TrainingStopped(step: step)
            }
        }
        let runtime = Date().timeIntervalSince(started)
        var trainMetrics = try core.trainMetrics(runtime: runtime, stepsThisRun: stepsThisRun, sampleCount: train.count)
        trainMetrics["train_pairs_per_second"] = Double(pairsThisRun) / max(runtime, 1e-9)
        trainMetrics["reference_runtime"] = (reference.seconds * 10000).rounded() / 10000
        // TRL's `log` adds the metrics stored since the last log to whatever it logs next: the train summary.
        trainMetrics.merge(takeLoggedMetrics()) { _, new in new }
        try core.exportFinal(trainMetrics: trainMetrics)
        core.plotLossesIfAsked()
    }

    /// The metric means over the steps since the last log (empty when there were none); resets them.
    func takeLoggedMetrics() -> [String: Double] {
        let count = metricsSinceLog[Self.metricKeys.count]
        defer { metricsSinceLog = [Double](repeating: 0, count: Self.metricKeys.count + 1) }
        guard count > 0 else { return [:] }
        var result: [String: Double] = [:]
        for (i, key) in Self.metricKeys.enumerated() { result[key] = metricsSinceLog[i] / count }
        return result
    }
}
